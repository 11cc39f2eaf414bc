import CBLAS
import CKumoBF16

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major, through OpenBLAS sgemm.
@inline(__always)
public func gemm(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha, a,
        Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The number of threads BLAS and Kumo's own kernels use.
public enum Threads {
    /// Sets the thread count of OpenBLAS and of `parallelFor`.
    public static func set(_ n: Int) {
        precondition(n >= 1)
        current = n
        openblas_set_num_threads(Int32(n))
        kumo_bf16_set_threads(Int32(n))
    }
    /// The thread count in force.
    nonisolated(unsafe) public private(set) static var current = 1
}
