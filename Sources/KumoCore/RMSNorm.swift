/// RMSNorm over rows of length `dim`: y = x / sqrt(mean(x²) + eps) · weight.
public enum RMSNormKernel {
    /// Forward for `rows` rows; stores 1/rms of each row in `rstd` for the backward pass.
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float
    ) {
        parallelFor(rows) { r in
            let xr = x + r * dim
            let yr = y + r * dim
            var acc = SIMD8<Float>()
            var i = 0
            while i + 8 <= dim {
                let v = xr.load8(i)
                acc.addProduct(v, v)
                i += 8
            }
            var ss = hsum(acc)
            while i < dim {
                ss += xr[i] * xr[i]
                i += 1
            }
            let s = 1 / (ss / Float(dim) + eps).squareRoot()
            rstd[r] = s
            i = 0
            while i + 8 <= dim {
                yr.store8(i, xr.load8(i) * s * weight.load8(i))
                i += 8
            }
            while i < dim {
                yr[i] = xr[i] * s * weight[i]
                i += 1
            }
        }
    }

    /// Backward: dx (+)= ∂L/∂x and dweight += ∂L/∂weight, given dy and the saved rstd.
    /// `accumulate` adds into dx instead of overwriting it (for residual branches).
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
        dweight: UnsafeMutablePointer<Float>, rows: Int, dim: Int, accumulate: Bool
    ) {
        // dweight is a reduction over rows: each task owns a slice of its columns and adds the
        // rows in order, so the sums do not depend on the thread count.
        parallelColumns(dim) { lo, hi in
            for r in 0..<rows {
                let s = rstd[r]
                let xr = x + r * dim
                let dyr = dy + r * dim
                var i = lo
                while i + 8 <= hi {
                    dweight.store8(i, dweight.load8(i) + dyr.load8(i) * xr.load8(i) * s)
                    i += 8
                }
                while i < hi {
                    dweight[i] += dyr[i] * xr[i] * s
                    i += 1
                }
            }
        }
        parallelFor(rows) { r in
            let s = rstd[r]
            let xr = x + r * dim
            let dyr = dy + r * dim
            let dxr = dx + r * dim
            var acc = SIMD8<Float>()
            var i = 0
            while i + 8 <= dim {
                acc.addProduct(dyr.load8(i) * weight.load8(i), xr.load8(i))
                i += 8
            }
            var dot = hsum(acc)
            while i < dim {
                dot += dyr[i] * weight[i] * xr[i]
                i += 1
            }
            let c = dot * s * s * s / Float(dim)
            i = 0
            while i + 8 <= dim {
                var g = dyr.load8(i) * weight.load8(i) * s - xr.load8(i) * c
                if accumulate { g += dxr.load8(i) }
                dxr.store8(i, g)
                i += 8
            }
            while i < dim {
                let g = dyr[i] * weight[i] * s - xr[i] * c
                dxr[i] = accumulate ? dxr[i] + g : g
                i += 1
            }
        }
    }
}
