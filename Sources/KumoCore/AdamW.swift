import Foundation

/// Hyper-parameters of one AdamW update.
public struct AdamWHyper: Sendable, Equatable {
    public var lr: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float

    /// Creates the hyper-parameters; eps defaults to 1e-8 (LLM-jp's finding: 1e-5 slows training).
    public init(lr: Float, beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1) {
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }
}

/// AdamW with decoupled weight decay, matching torch.optim.AdamW.
public enum AdamWKernel {
    /// One update of `count` parameters at 1-based `step`; `decay` says whether weight decay
    /// applies to this range. `gradScale` multiplies the gradient (e.g. the clipping factor).
    public static func update(
        param: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
        v: UnsafeMutablePointer<Float>, count: Int, step: Int, hyper: AdamWHyper, decay: Bool,
        gradScale: Float
    ) {
        let bc1 = 1 - Foundation.pow(Double(hyper.beta1), Double(step))
        let bc2 = 1 - Foundation.pow(Double(hyper.beta2), Double(step))
        let stepSize = Float(Double(hyper.lr) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let keep: Float = decay ? 1 - hyper.lr * hyper.weightDecay : 1
        let b1 = hyper.beta1
        let b2 = hyper.beta2
        chunked(count) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let g = grad.load8(i) * gradScale
                let mi = m.load8(i) * b1 + (1 - b1) * g
                let vi = v.load8(i) * b2 + (1 - b2) * g * g
                m.store8(i, mi)
                v.store8(i, vi)
                let denom = vi.squareRoot() / bc2Sqrt + hyper.eps
                param.store8(i, param.load8(i) * keep - stepSize * mi / denom)
                i += 8
            }
            while i < hi {
                let g = grad[i] * gradScale
                let mi = m[i] * b1 + (1 - b1) * g
                let vi = v[i] * b2 + (1 - b2) * g * g
                m[i] = mi
                v[i] = vi
                param[i] = param[i] * keep - stepSize * mi / (vi.squareRoot() / bc2Sqrt + hyper.eps)
                i += 1
            }
        }
    }

    /// Sum of squares of `count` floats, accumulated in Double in a fixed order: the sums of
    /// 4096-float pieces (computed in parallel) added in order.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let pieces = (count + 4095) / 4096
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: pieces)
        defer { sums.deallocate() }
        parallelFor(pieces) { p in
            let end = min(count, p * 4096 + 4096)
            var acc = SIMD8<Float>()
            var j = p * 4096
            while j + 8 <= end {
                let v = x.load8(j)
                acc.addProduct(v, v)
                j += 8
            }
            var s = Double(hsum(acc))
            while j < end {
                s += Double(x[j] * x[j])
                j += 1
            }
            sums[p] = s
        }
        return (0..<pieces).reduce(0) { $0 + sums[$1] }
    }
}
