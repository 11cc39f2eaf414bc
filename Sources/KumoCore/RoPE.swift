import Foundation

/// Rotary position embedding in the Hugging Face LLaMA convention (rotate_half: the first and
/// second halves of each head form the rotated pairs), with a precomputed cos/sin table.
public final class RoPETable: @unchecked Sendable {
    /// Size of one attention head.
    public let headDim: Int
    /// Number of positions the table covers.
    public let maxPositions: Int
    let cos: FloatBuffer
    let sin: FloatBuffer

    /// Bytes of the table for `maxPositions` positions of heads of `headDim`: cos and sin, fp32.
    public static func bytes(headDim: Int, maxPositions: Int) -> Double {
        4 * Double(maxPositions) * Double(headDim)
    }

    /// Builds the table for positions 0..<maxPositions with base `theta`.
    public init(headDim: Int, maxPositions: Int, theta: Double) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        cos = FloatBuffer(count: maxPositions * half)
        sin = FloatBuffer(count: maxPositions * half)
        for p in 0..<maxPositions {
            for j in 0..<half {
                let invFreq = Foundation.pow(theta, -Double(2 * j) / Double(headDim))
                let angle = Double(p) * invFreq
                cos[p * half + j] = Float(Foundation.cos(angle))
                sin[p * half + j] = Float(Foundation.sin(angle))
            }
        }
    }

    /// Rotates `heads` heads of every row in place; row r has position `positions[r]`, or r % seqLen
    /// without `positions` (rows of documents packed into sequences of `seqLen` count from each
    /// document's start), and its heads are `headDim` apart. `inverse` applies the transposed
    /// rotation (the backward pass).
    public func apply(
        _ x: UnsafeMutablePointer<Float>, rows: Int, seqLen: Int, positions: UnsafePointer<Int32>? = nil, heads: Int,
        inverse: Bool = false
    ) {
        precondition(seqLen <= maxPositions, "sequence longer than the RoPE table")
        let width = heads * headDim
        let sign: Float = inverse ? -1 : 1
        parallelFor(rows) { r in
            let position = positions.map { Int($0[r]) } ?? r % seqLen
            self.rotate(x + r * width, position: position, heads: heads, sign: sign)
        }
    }

    /// Rotates `heads` heads of every row in place, row r at position `positions[r]` (decoding,
    /// where each row is the next token of a different sequence).
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, positions: UnsafePointer<Int32>, heads: Int) {
        let width = heads * headDim
        for r in 0..<rows {
            precondition(Int(positions[r]) < maxPositions, "position beyond the RoPE table")
            rotate(x + r * width, position: Int(positions[r]), heads: heads, sign: 1)
        }
    }

    private func rotate(_ row: UnsafeMutablePointer<Float>, position: Int, heads: Int, sign: Float) {
        let half = headDim / 2
        let c = cos.pointer + position * half
        let s = sin.pointer + position * half
        for h in 0..<heads {
            let a = row + h * headDim
            let b = a + half
            var j = 0
            while j + 8 <= half {
                let x1 = a.load8(j)
                let x2 = b.load8(j)
                let cj = c.load8(j)
                let sj = s.load8(j) * sign
                a.store8(j, x1 * cj - x2 * sj)
                b.store8(j, x2 * cj + x1 * sj)
                j += 8
            }
            while j < half {
                let x1 = a[j]
                let x2 = b[j]
                let sj = s[j] * sign
                a[j] = x1 * c[j] - x2 * sj
                b[j] = x2 * c[j] + x1 * sj
                j += 1
            }
        }
    }
}
