import Foundation

/// Attention of single query rows (one new token each) over cached keys and values, for
/// grouped-query heads: out = softmax(q·Kᵀ/√d)·V per query head.
///
/// A row's cached positions are cut into splits of `splitLength`; each (row, split) is one task,
/// which reads its keys and then its values in address order, once for all heads (every key/value
/// head serves the `heads / kvHeads` query heads of its group while its slice of the row is in L1),
/// and leaves its split's running maximum, sum of exponentials and unnormalized output. The splits
/// of a row are then merged through their log-sum-exp, so long contexts spread over threads
/// (split-KV). Splits depend on the context length only, so results do not depend on the thread count.
public enum DecodeAttentionKernel {
    /// Cached positions per split.
    public static let splitLength = 256

    /// One query row: its query [heads·headDim], output [heads·headDim], and the `length` cached
    /// rows of keys and values ([length, kvHeads·headDim] each, keys already rotated).
    public struct Row {
        public let q: UnsafePointer<Float>
        public let out: UnsafeMutablePointer<Float>
        public let keys: UnsafePointer<Float>
        public let values: UnsafePointer<Float>
        public let length: Int

        /// A query row over `length` cached positions.
        public init(
            q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, keys: UnsafePointer<Float>,
            values: UnsafePointer<Float>, length: Int
        ) {
            self.q = q
            self.out = out
            self.keys = keys
            self.values = values
            self.length = length
        }
    }

    /// Splits of a row over `length` cached positions.
    static func splits(_ length: Int) -> Int { (length + splitLength - 1) / splitLength }

    /// Floats of `scratch` that `forward` needs for `rows` rows of up to `capacity` positions.
    public static func scratchFloats(rows: Int, heads: Int, headDim: Int, capacity: Int) -> Int {
        rows * splits(capacity) * heads * (headDim + 2)
    }

    /// Attends every row; rows may share cached keys and values. `scratch` holds
    /// `scratchFloats(rows:heads:headDim:capacity:)` floats for the longest row's length.
    public static func forward(
        _ rows: [Row], heads: Int, kvHeads: Int, headDim: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let maxSplits = rows.map { splits($0.length) }.max() ?? 0
        let partial = heads * (headDim + 2)
        parallelFor(rows.count * maxSplits) { task in
            let (b, s) = task.quotientAndRemainder(dividingBy: maxSplits)
            let row = rows[b]
            let lo = s * splitLength
            guard lo < row.length else { return }
            attendSplit(
                row, positions: lo..<min(row.length, lo + splitLength), heads: heads, kvHeads: kvHeads,
                headDim: headDim, partial: scratch + task * partial)
        }
        for (b, row) in rows.enumerated() {
            merge(
                scratch + b * maxSplits * partial, splits: splits(row.length), into: row.out, heads: heads,
                headDim: headDim)
        }
    }

    /// One split: partial holds, per head, the unnormalized output [headDim], then the maximum score
    /// and the sum of exp(score − maximum).
    private static func attendSplit(
        _ row: Row, positions: Range<Int>, heads: Int, kvHeads: Int, headDim: Int,
        partial: UnsafeMutablePointer<Float>
    ) {
        let (n, group, kvw) = (positions.count, heads / kvHeads, kvHeads * headDim)
        let scale = 1 / Float(headDim).squareRoot()
        withUnsafeTemporaryAllocation(of: Float.self, capacity: heads * splitLength) { buffer in
            let scores = buffer.baseAddress!
            for j in 0..<n {
                let k = row.keys + (positions.lowerBound + j) * kvw
                for h in 0..<heads {
                    scores[h * splitLength + j] =
                        dotProduct(row.q + h * headDim, k + h / group * headDim, count: headDim) * scale
                }
            }
            for h in 0..<heads {
                let p = scores + h * splitLength
                let m = AttentionKernel.maximum(p, n)
                let out = partial + h * (headDim + 2)
                out[headDim] = m
                out[headDim + 1] = AttentionKernel.exponentiate(p, from: 0, to: n, width: n, minus: m)
                out.update(repeating: 0, count: headDim)
            }
            for j in 0..<n {
                let v = row.values + (positions.lowerBound + j) * kvw
                for h in 0..<heads {
                    axpy(scores[h * splitLength + j], v + h / group * headDim, partial + h * (headDim + 2), headDim)
                }
            }
        }
    }

    /// out_h = Σ_s e^(m_s − M)·o_s / Σ_s e^(m_s − M)·l_s over a row's splits, M the largest m_s.
    private static func merge(
        _ partials: UnsafePointer<Float>, splits: Int, into out: UnsafeMutablePointer<Float>, heads: Int,
        headDim: Int
    ) {
        let stride = heads * (headDim + 2)
        for h in 0..<heads {
            let first = partials + h * (headDim + 2)
            var m = -Float.infinity
            for s in 0..<splits { m = max(m, first[s * stride + headDim]) }
            var total: Float = 0
            let o = out + h * headDim
            o.update(repeating: 0, count: headDim)
            for s in 0..<splits {
                let p = first + s * stride
                let w = expf(p[headDim] - m)
                total += w * p[headDim + 1]
                axpy(w, p, o, headDim)
            }
            AttentionKernel.scale(o, by: 1 / total, count: headDim)
        }
    }

    /// y += alpha·x over n floats.
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let a = SIMD8(repeating: alpha)
        var i = 0
        while i + 8 <= n {
            y.store8(i, y.load8(i).addingProduct(a, x.load8(i)))
            i += 8
        }
        while i < n {
            y[i] += alpha * x[i]
            i += 1
        }
    }
}
