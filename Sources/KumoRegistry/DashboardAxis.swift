import Foundation

/// How a chart's tick labels write values: plain numbers (with k, M, G for large ones) or bytes
/// (KiB, MiB, GiB).
public enum ValueFormat: Sendable {
    case plain, bytes

    /// The unit tick steps are nice multiples of over a range `span` wide: 1, or for bytes the power of
    /// 1024 (KiB, MiB, ...) the labels use.
    func unit(_ span: Double) -> Double {
        guard self == .bytes, span >= 1024 else { return 1 }
        return pow(1024, (log2(span) / 10).rounded(.down))
    }

    /// `value` in a few characters: 3–4 significant digits.
    public func string(_ value: Double) -> String {
        let magnitude = abs(value)
        if value == 0 { return "0" }
        switch self {
        case .bytes:
            let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
            let power = min(max(Int(log2(magnitude) / 10), 0), units.count - 1)
            return String(format: "%.3g ", value / pow(1024, Double(power))) + units[power]
        case .plain:
            if magnitude >= 1e4 {
                let units = ["", "k", "M", "G", "T", "P"]
                let power = min(Int(log10(magnitude) / 3), units.count - 1)
                return String(format: "%.3g", value / pow(1000, Double(power))) + units[power]
            }
            return String(format: "%.4g", value)
        }
    }
}

/// One axis of a chart: its domain (in log10 units on a log scale) and its tick values.
public struct AxisScale: Equatable, Sendable {
    /// The ends of the domain, as plotted (log10 of the values on a log scale).
    public let low: Double
    public let high: Double
    public let log: Bool
    /// Values at which the axis draws a tick and a grid line, within the domain.
    public let ticks: [Double]

    /// A scale over `values` (on a log scale only the positive ones count) whose linear ticks are nice
    /// multiples of `format`'s unit; `extend` widens a linear domain to the nearest ticks outside it (for
    /// y; x keeps the data's extent).
    public init(values: [Double], log: Bool, extend: Bool, format: ValueFormat = .plain) {
        self.log = log
        let used = values.filter { $0.isFinite && (!log || $0 > 0) }.map { log ? log10($0) : $0 }
        var low = used.min() ?? 0
        var high = used.max() ?? 1
        if high - low < 1e-12 * max(abs(low), 1) {
            let pad = log ? 0.1 : (low == 0 ? 1 : abs(low) * 0.05)
            low -= pad
            high += pad
        }
        if log {
            let pad = (high - low) * 0.02
            low -= pad
            high += pad
            ticks = Self.logTicks(low: low, high: high)
        } else {
            let unit = format.unit(high - low)
            let step = Self.niceStep((high - low) / 5 / unit) * unit
            if extend {
                low = (low / step).rounded(.down) * step
                high = (high / step).rounded(.up) * step
            }
            ticks = Self.linearTicks(low: low, high: high, step: step)
        }
        self.low = low
        self.high = high
    }

    /// Where `value` lies, from 0 (low end) to 1 (high end); nil for a value a log scale cannot show.
    public func fraction(_ value: Double) -> Double? {
        guard !log || value > 0 else { return nil }
        return ((log ? log10(value) : value) - low) / (high - low)
    }

    /// 1, 2 or 5 times a power of ten, the nearest at or above `rough`.
    static func niceStep(_ rough: Double) -> Double {
        guard rough > 0, rough.isFinite else { return 1 }
        let power = pow(10, (log10(rough)).rounded(.down))
        let mantissa = rough / power
        return (mantissa <= 1 ? 1 : mantissa <= 2 ? 2 : mantissa <= 5 ? 5 : 10) * power
    }

    /// The multiples of `step` within low...high.
    static func linearTicks(low: Double, high: Double, step: Double) -> [Double] {
        let first = Int((low / step).rounded(.up))
        let last = Int((high / step).rounded(.down))
        guard first <= last, last - first <= 100 else { return [] }
        return (first...last).map { Double($0) * step }
    }

    /// Ticks of a log scale over 10^low...10^high: powers of ten (every few over many decades), with 2×
    /// and 5× (or every integer multiple) when the domain spans few decades; linear ticks when it spans
    /// too little for those.
    static func logTicks(low: Double, high: Double) -> [Double] {
        let span = high - low
        let multiples: [Double] = span > 3 ? [1] : span > 1 ? [1, 2, 5] : Array(1...9).map(Double.init)
        let every = max(Int((span / 8).rounded(.up)), 1)
        var ticks: [Double] = []
        for decade in Int(low.rounded(.down))...Int(high.rounded(.up)) where decade % every == 0 {
            for m in multiples {
                let v = m * pow(10, Double(decade))
                if log10(v) >= low && log10(v) <= high { ticks.append(v) }
            }
        }
        if ticks.count >= 2 { return ticks }
        let (a, b) = (pow(10, low), pow(10, high))
        return linearTicks(low: a, high: b, step: niceStep((b - a) / 4))
    }
}
