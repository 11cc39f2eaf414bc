import CBLAS
import CKumoBF16

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Multiply-adds below which a GEMM tile is not worth a call of its own: tiles stay far above
/// OpenBLAS's small-matrix path (about 10⁶), and packing again the operand all tiles share is cheap.
let gemmTileWork = 1 << 22
/// Tile edges are multiples of this (a multiple of every OpenBLAS micro-kernel's unrolling), so each
/// element of C is computed exactly as in one call: results do not depend on the tiling.
let gemmTileAlign = 64

/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major, through single-threaded OpenBLAS
/// sgemm: with several threads, C is cut into blocks of rows (or of columns, when it is wider than
/// tall) that the threads of Kumo's pool claim one at a time.
public func gemm(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let byRows = m >= n
    let split = byRows ? m : n
    let tiles = Threads.current == 1 ? 1 : min(Threads.current * 4, split / gemmTileAlign, m * n * k / gemmTileWork)
    parallelChunks(split, tasks: tiles, align: gemmTileAlign) { lo, hi in
        if byRows {
            cblas_sgemm(
                CblasRowMajor, transA.cblas, transB.cblas, Int32(hi - lo), Int32(n), Int32(k), alpha,
                a + (transA == .none ? lo * lda : lo), Int32(lda), b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
        } else {
            cblas_sgemm(
                CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda),
                b + (transB == .none ? lo : lo * ldb), Int32(ldb), beta, c + lo, Int32(ldc))
        }
    }
}

/// The number of threads BLAS and Kumo's own kernels use.
public enum Threads {
    /// Sets the thread count of `parallelFor` and `gemm` (Kumo's pool); OpenBLAS itself stays on one
    /// thread, since its own threads spin while they wait and stall when one of them is descheduled.
    public static func set(_ n: Int) {
        precondition(n >= 1)
        current = n
        openblas_set_num_threads(1)
        kumo_bf16_set_threads(Int32(n))
    }
    /// The thread count in force.
    nonisolated(unsafe) public private(set) static var current = 1
}
