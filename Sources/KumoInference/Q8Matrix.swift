import KumoCore

/// A [rows, columns] weight matrix quantized as llama.cpp's Q8_0 does: each run of 32 weights of a
/// row is stored as 32 signed bytes and one fp32 scale (max |w| / 127), for matrix-vector products.
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
        for block in 0..<(rows * columns / Self.blockSize) {
            let w = weights + block * Self.blockSize
            var amax: Float = 0
            for i in 0..<Self.blockSize { amax = max(amax, abs(w[i])) }
            let scale = amax / 127
            scales[block] = scale
            let inv: Float = scale == 0 ? 0 : 1 / scale
            for i in 0..<Self.blockSize {
                quants[block * Self.blockSize + i] = Int8((w[i] * inv).rounded())
            }
        }
    }

    deinit {
        quants.deallocate()
        scales.deallocate()
    }

    /// The weight at (row, column) as the kernel sees it: quant × scale.
    public func dequantized(row: Int, column: Int) -> Float {
        Float(quants[row * columns + column]) * scales[(row * columns + column) / Self.blockSize]
    }

    /// y[r] (+)= W·x[r] for `count` input rows x ([count, columns]) into y ([count, rows]).
    public func apply(
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool
    ) {
        let blocks = columns / Self.blockSize
        let chunk = 16
        parallelFor((rows + chunk - 1) / chunk) { c in
            for r in (c * chunk)..<min(rows, (c + 1) * chunk) {
                let q = UnsafePointer(quants + r * columns)
                let s = UnsafePointer(scales + r * blocks)
                for b in 0..<count {
                    let dot = Self.rowDot(q, s, x + b * columns, blocks: blocks)
                    let out = y + b * rows + r
                    out.pointee = accumulate ? out.pointee + dot : dot
                }
            }
        }
    }

    /// Σ_blocks scale · Σ_i q_i·x_i, converting bytes to floats eight at a time.
    @inline(__always)
    static func rowDot(
        _ q: UnsafePointer<Int8>, _ s: UnsafePointer<Float>, _ x: UnsafePointer<Float>, blocks: Int
    ) -> Float {
        var total = SIMD8<Float>()
        let raw = UnsafeRawPointer(q)
        for b in 0..<blocks {
            var acc = SIMD8<Float>()
            let base = b * blockSize
            for i in stride(from: 0, to: blockSize, by: 8) {
                let bytes = raw.loadUnaligned(fromByteOffset: base + i, as: SIMD8<Int8>.self)
                acc.addProduct(toFloat(bytes), x.load8(base + i))
            }
            total.addProduct(acc, SIMD8(repeating: s[b]))
        }
        return hsum(total)
    }

    /// Exact int8 → float: the byte, sign-extended, is added to the bits of 1.5·2²³ (whose low
    /// mantissa then holds it) and 1.5·2²³ is subtracted; integer and float adds only.
    @inline(__always)
    static func toFloat(_ v: SIMD8<Int8>) -> SIMD8<Float> {
        let wide = SIMD8<Int32>(truncatingIfNeeded: v)
        let magic = SIMD8<Float>(repeating: 12_582_912)
        return unsafeBitCast(wide &+ unsafeBitCast(magic, to: SIMD8<Int32>.self), to: SIMD8<Float>.self) - magic
    }
}
