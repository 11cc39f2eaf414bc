import CKumoBF16
import KumoCore

/// The instructions of Q8 products, chosen at run time among those the CPU has.
public enum Q8Kernel: UInt32, CaseIterable, Sendable {
    /// Plain C: integer products one byte at a time.
    case scalar = 0
    /// AVX2: vpmaddwd, 16 products at a time.
    case avx2 = 1
    /// AVX-512 VNNI: vpdpwssd, a block of 32 products at a time.
    case avx512VNNI = 2

    /// The kernels this CPU runs.
    public static var supported: [Q8Kernel] { allCases.filter { kumo_q8_supported(kumo_q8_kernel($0.rawValue)) != 0 } }
    /// The fastest kernel this CPU runs, or the one the KUMO_Q8_KERNEL variable names (scalar, avx2, vnni).
    public static let selected = Q8Kernel(rawValue: kumo_q8_default_kernel().rawValue)!
}

/// A [rows, columns] weight matrix quantized as llama.cpp's Q8_0 does: each run of 32 weights of a
/// row is stored as 32 signed bytes and one fp32 scale (max |w| / 127), for matrix-vector products.
/// Products quantize the input rows per block of 32 to int16 (scale max|x| / 32767, an error 256
/// times below the weights', where llama.cpp's Q8_0 × Q8_0 takes int8) and multiply with integer
/// instructions, one scale product per block.
public final class Q8Matrix: @unchecked Sendable {
    /// Weights per block sharing one scale.
    public static let blockSize = 32
    /// Output features.
    public let rows: Int
    /// Input features (a multiple of `blockSize`).
    public let columns: Int
    let quants: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>

    /// Quantizes `weights` ([rows, columns], row-major); columns must be a multiple of 32.
    public init(weights: UnsafePointer<Float>, rows: Int, columns: Int) {
        precondition(columns % Self.blockSize == 0, "Q8 needs columns divisible by \(Self.blockSize)")
        self.rows = rows
        self.columns = columns
        quants = .allocate(capacity: rows * columns)
        scales = .allocate(capacity: rows * columns / Self.blockSize)
        kumo_q8_quantize(weights, quants, scales, rows * columns)
    }

    deinit {
        quants.deallocate()
        scales.deallocate()
    }

    /// The weight at (row, column) as the kernel sees it: quant × scale.
    public func dequantized(row: Int, column: Int) -> Float {
        Float(quants[row * columns + column]) * scales[(row * columns + column) / Self.blockSize]
    }

    /// y[r] (+)= W·x[r] for `count` input rows x ([count, columns]) into y ([count, rows]), x
    /// quantized to int16 blocks first.
    public func apply(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool,
        kernel: Q8Kernel = .selected
    ) {
        let xq = UnsafeMutablePointer<Int16>.allocate(capacity: count * columns)
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: count * columns / Self.blockSize)
        defer {
            xq.deallocate()
            xs.deallocate()
        }
        kumo_q16_quantize(x, xq, xs, count * columns)
        parallelRows(rows, rowBytes: columns + 4 * columns / Self.blockSize) { first, end in
            kumo_q8_matvec(
                kumo_q8_kernel(kernel.rawValue), quants, scales, first, end, columns, xq, xs, count, y, rows,
                accumulate ? 1 : 0)
        }
    }
}
