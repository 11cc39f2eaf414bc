import CKumoBF16
import KumoCore

/// A [rows, columns] weight matrix rounded to bf16 (half the bytes of fp32), for matrix-vector
/// products on AVX512_BF16 units: the input rows are rounded to bf16 as well and `vdpbf16ps` sums
/// their products in fp32.
final class BF16Matrix: @unchecked Sendable {
    /// Columns must be a multiple of this (the kernel takes 32 pairs per instruction).
    static let columnMultiple = 32
    /// Whether this CPU has the bf16 units the kernel needs.
    static var supported: Bool { kumo_cpu_has_avx512_bf16() != 0 }
    let rows: Int
    let columns: Int
    let weights: UnsafeMutablePointer<UInt16>

    /// Rounds `weights` ([rows, columns], row-major) to bf16; needs `supported` and columns a multiple of 32.
    init(weights w: UnsafePointer<Float>, rows: Int, columns: Int) {
        precondition(Self.supported, "bf16 products need a CPU with AVX512_BF16")
        precondition(columns % Self.columnMultiple == 0, "bf16 products need columns divisible by 32")
        self.rows = rows
        self.columns = columns
        weights = .allocate(capacity: rows * columns)
        kumo_bf16_round(w, weights, rows * columns)
    }

    deinit { weights.deallocate() }

    /// y[r] (+)= W·x[r] for `count` input rows x ([count, columns]) into y ([count, rows]).
    func apply(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool) {
        let xb = UnsafeMutablePointer<UInt16>.allocate(capacity: count * columns)
        defer { xb.deallocate() }
        kumo_bf16_round(x, xb, count * columns)
        parallelRows(rows, rowBytes: 2 * columns) { first, end in
            kumo_bf16_matvec(weights, first, end, columns, xb, count, y, rows, accumulate ? 1 : 0)
        }
    }
}
