import KumoCore
import KumoModel

/// AdamW settings that stay fixed over a run.
public struct AdamWSettings: Sendable, Equatable {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// Global gradient-norm clipping threshold; 0 turns clipping off.
    public var gradClip: Double

    /// Creates the settings.
    public init(
        beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1, gradClip: Double = 1
    ) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.gradClip = gradClip
    }
}

/// AdamW over a model's flat parameter buffer, or over one contiguous shard of it (ZeRO stage
/// 1), with global gradient-norm clipping; weight decay skips norm weights.
public final class AdamW {
    public let settings: AdamWSettings
    /// The range of the flat buffer this optimizer updates (all of it unless sharded).
    public let shard: Range<Int>
    /// First and second moments of `shard`.
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Updates applied so far.
    public internal(set) var step = 0
    /// Pieces of tensors inside the shard: offset in the flat buffer, count, decay.
    private let ranges: [(offset: Int, count: Int, decay: Bool)]

    /// Creates zero moments for `shard` of `layout` (default: the whole buffer).
    public init(layout: ParameterLayout, settings: AdamWSettings, shard: Range<Int>? = nil) {
        let shard = shard ?? 0..<layout.count
        self.settings = settings
        self.shard = shard
        m = FloatBuffer(count: shard.count)
        v = FloatBuffer(count: shard.count)
        ranges = layout.tensors.compactMap { t in
            let lower = max(t.offset, shard.lowerBound)
            let upper = min(t.offset + t.count, shard.upperBound)
            return lower < upper ? (lower, upper - lower, t.decay) : nil
        }
    }

    /// Bytes of optimizer state (the two moments).
    public var stateBytes: Int { 8 * shard.count }

    /// L2 norm of all gradients.
    public static func gradNorm(_ grads: FloatBuffer) -> Double {
        AdamWKernel.sumOfSquares(grads.pointer, count: grads.count).squareRoot()
    }

    /// Applies one update of the shard at learning rate `lr`, scaling gradients down when their
    /// global norm `gradNorm` (from `gradNorm(_:)`) exceeds the clipping threshold.
    public func update(params: FloatBuffer, grads: FloatBuffer, lr: Double, gradNorm norm: Double) {
        update(params: params, shardGrads: grads.pointer + shard.lowerBound, lr: lr, gradNorm: norm)
    }

    /// The same update with the shard's gradients alone, `shardGrads[0..<shard.count]` (ZeRO-2
    /// and 3 keep no others).
    public func update(params: FloatBuffer, shardGrads: UnsafePointer<Float>, lr: Double, gradNorm norm: Double) {
        var scale: Float = 1
        if settings.gradClip > 0 { scale = Float(min(1, settings.gradClip / (norm + 1e-6))) }
        step += 1
        let hyper = AdamWHyper(
            lr: Float(lr), beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps,
            weightDecay: settings.weightDecay)
        for r in ranges {
            let moment = r.offset - shard.lowerBound
            AdamWKernel.update(
                param: params.pointer + r.offset, grad: shardGrads + moment, m: m.pointer + moment,
                v: v.pointer + moment, count: r.count, step: step, hyper: hyper, decay: r.decay, gradScale: scale)
        }
    }
}
