import Foundation

/// One point of a chart series.
public struct ChartPoint: Equatable, Sendable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// The smoothing TensorBoard and Weights & Biases apply to scalars: an exponential moving average
/// `ema_t = a·ema_{t-1} + (1-a)·x_t` from `ema_0 = 0`, de-biased by dividing by `1 - a^t` so that the
/// first points are not pulled towards zero.
public enum Smoothing {
    /// The de-biased moving average of `points`' y values with weight `a` (0: none, towards 1: smoother);
    /// x values are kept.
    public static func debiasedEMA(_ points: [ChartPoint], weight a: Double) -> [ChartPoint] {
        guard a > 0 else { return points }
        var ema = 0.0
        var decay = 1.0
        return points.map { p in
            ema = a * ema + (1 - a) * p.y
            decay *= a
            return ChartPoint(x: p.x, y: ema / (1 - decay))
        }
    }
}

/// Min/max downsampling: a long series is cut into equal runs of points and each run is replaced by
/// its lowest and highest point (in their order), so a one-step spike survives at any zoom.
public enum Downsampling {
    /// At most `maxPoints` of `points` (`maxPoints / 2` buckets of two); `points` as they are when
    /// there are no more than that.
    public static func minMax(_ points: [ChartPoint], maxPoints: Int) -> [ChartPoint] {
        let buckets = max(maxPoints / 2, 1)
        guard points.count > max(maxPoints, 2) else { return points }
        var out: [ChartPoint] = []
        out.reserveCapacity(2 * buckets)
        for b in 0..<buckets {
            let range = (b * points.count / buckets)..<((b + 1) * points.count / buckets)
            guard !range.isEmpty else { continue }
            var low = range.lowerBound
            var high = range.lowerBound
            for i in range {
                if points[i].y < points[low].y { low = i }
                if points[i].y > points[high].y { high = i }
            }
            out.append(points[min(low, high)])
            if low != high { out.append(points[max(low, high)]) }
        }
        return out
    }
}
