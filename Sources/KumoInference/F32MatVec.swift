import CKumoBF16
import KumoCore

/// Matrix-vector products of decoding with fp32 weights, y = x·Wᵀ for a few input rows. Decoding is
/// bound by reading W from memory, so W is read once per call, row after row in address order (one
/// sequential stream, which the hardware prefetcher follows best), and each row is multiplied with
/// every input row while it sits in L1. Threads split the rows through `parallelFor` (a BLAS call
/// here would leave OpenBLAS's threads spinning against the attention and norm kernels).
enum F32MatVec {
    /// Input rows up to which this kernel beats a GEMM (weights stream from memory once per call).
    static let maxInputRows = 8
    /// Weight rows per parallel task.
    static let rowsPerTask = 16
    /// Rows ahead of the one in use whose cache lines are asked for (the hardware prefetcher alone
    /// leaves the stream short of memory bandwidth).
    static let prefetchRows = 4

    /// y[b·rows + r] (+)= W[r]·x[b] for b in 0..<count, with W [rows, columns] row-major.
    static func apply(
        w: UnsafePointer<Float>, rows: Int, columns: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        count: Int, accumulate: Bool
    ) {
        parallelFor((rows + rowsPerTask - 1) / rowsPerTask) { task in
            let end = min(rows, (task + 1) * rowsPerTask)
            for r in (task * rowsPerTask)..<end {
                let row = w + r * columns
                if r + prefetchRows < end {
                    for line in stride(from: prefetchRows * columns, to: (prefetchRows + 1) * columns, by: 16) {
                        kumo_prefetch(row + line)
                    }
                }
                for b in 0..<count {
                    let d = dot(row, x + b * columns, columns)
                    let out = y + b * rows + r
                    out.pointee = accumulate ? out.pointee + d : d
                }
            }
        }
    }

    /// The dot product of a weight row with x, 32 columns per step in four accumulators (four FMA
    /// chains in flight).
    @inline(__always)
    static func dot(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var a0 = SIMD8<Float>()
        var a1 = SIMD8<Float>()
        var a2 = SIMD8<Float>()
        var a3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            a0.addProduct(w.load8(i), x.load8(i))
            a1.addProduct(w.load8(i + 8), x.load8(i + 8))
            a2.addProduct(w.load8(i + 16), x.load8(i + 16))
            a3.addProduct(w.load8(i + 24), x.load8(i + 24))
            i += 32
        }
        while i + 8 <= n {
            a0.addProduct(w.load8(i), x.load8(i))
            i += 8
        }
        var d = hsum((a0 + a1) + (a2 + a3))
        while i < n {
            d += w[i] * x[i]
            i += 1
        }
        return d
    }
}
