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

/// AdamW over a model's flat parameter buffer, with global gradient-norm clipping; weight
/// decay skips norm weights.
public final class AdamW {
    public let settings: AdamWSettings
    /// First and second moments, laid out like the parameters.
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Updates applied so far.
    public internal(set) var step = 0
    private let ranges: [(offset: Int, count: Int, decay: Bool)]

    /// Creates zero moments for `layout`.
    public init(layout: ParameterLayout, settings: AdamWSettings) {
        self.settings = settings
        m = FloatBuffer(count: layout.count)
        v = FloatBuffer(count: layout.count)
        ranges = layout.tensors.map { ($0.offset, $0.count, $0.decay) }
    }

    /// L2 norm of all gradients.
    public static func gradNorm(_ grads: FloatBuffer) -> Double {
        AdamWKernel.sumOfSquares(grads.pointer, count: grads.count).squareRoot()
    }

    /// Applies one update at learning rate `lr`, scaling gradients down when their global
    /// norm `gradNorm` (from `gradNorm(_:)`) exceeds the clipping threshold.
    public func update(params: FloatBuffer, grads: FloatBuffer, lr: Double, gradNorm norm: Double) {
        var scale: Float = 1
        if settings.gradClip > 0 { scale = Float(min(1, settings.gradClip / (norm + 1e-6))) }
        step += 1
        let hyper = AdamWHyper(
            lr: Float(lr), beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps,
            weightDecay: settings.weightDecay)
        for r in ranges {
            AdamWKernel.update(
                param: params.pointer + r.offset, grad: grads.pointer + r.offset, m: m.pointer + r.offset,
                v: v.pointer + r.offset, count: r.count, step: step, hyper: hyper, decay: r.decay, gradScale: scale)
        }
    }
}
