import CKumoBF16
import KumoCore

/// The instructions of fp32 matrix-vector products, chosen at run time among those the CPU has.
public enum F32Kernel: UInt32, CaseIterable, Sendable {
    /// Plain C.
    case scalar = 0
    /// AVX2 with FMA, 8 lanes.
    case avx2 = 1
    /// AVX-512, 16 lanes.
    case avx512 = 2

    /// The kernels this CPU runs.
    public static var supported: [F32Kernel] {
        allCases.filter { kumo_f32_supported(kumo_f32_kernel($0.rawValue)) != 0 }
    }
    /// The fastest kernel this CPU runs.
    public static let selected = F32Kernel(rawValue: kumo_f32_default_kernel().rawValue)!
}

/// Matrix-vector products of decoding with fp32 weights, y = x·Wᵀ for a few input rows. Decoding is
/// bound by reading W from memory, so W is read once per call, row after row in address order (one
/// sequential stream, with the rows ahead prefetched), and each row is multiplied with every input
/// row while it sits in L1 (`kumo_f32_matvec`). Threads split the rows through `parallelRows` (a BLAS
/// call here would leave OpenBLAS's threads spinning against the attention and norm kernels).
public enum F32MatVec {
    /// Input rows up to which this kernel beats a GEMM (weights stream from memory once per call).
    public static let maxInputRows = 8
    /// y[b·rows + r] (+)= W[r]·x[b] for b in 0..<count, with W [rows, columns] row-major.
    public static func apply(
        w: UnsafePointer<Float>, rows: Int, columns: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        count: Int, accumulate: Bool, kernel: F32Kernel = .selected
    ) {
        parallelRows(rows, rowBytes: 4 * columns) { first, end in
            kumo_f32_matvec(
                kumo_f32_kernel(kernel.rawValue), w, first, end, rows, columns, x, count, y, rows, accumulate ? 1 : 0)
        }
    }
}
