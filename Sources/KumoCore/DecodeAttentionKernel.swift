import CKumoBF16
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
    /// rows of keys and values ([length, kvHeads·headDim] each, keys already rotated, both in one format).
    public struct Row {
        public let q: UnsafePointer<Float>
        public let out: UnsafeMutablePointer<Float>
        public let keys: KVRows
        public let values: KVRows
        public let length: Int

        /// A query row over `length` cached positions.
        public init(
            q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, keys: KVRows, values: KVRows, length: Int
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
            let split = Split(
                q: row.q, positions: lo..<min(row.length, lo + splitLength), heads: heads, kvHeads: kvHeads,
                headDim: headDim, partial: scratch + task * partial)
            switch (row.keys, row.values) {
            case (.fp32(let k), .fp32(let v)): attend(split, keys: k, values: v)
            case (.bf16(let k), .bf16(let v)): attend(split, keys: k, values: v)
            default: preconditionFailure("keys and values of one row in different formats")
            }
        }
        for (b, row) in rows.enumerated() {
            merge(
                scratch + b * maxSplits * partial, splits: splits(row.length), into: row.out, heads: heads,
                headDim: headDim)
        }
    }

    /// One task: a row's query, the positions it attends, the shape, and where its partial result goes.
    private struct Split {
        let q: UnsafePointer<Float>
        let positions: Range<Int>
        let heads, kvHeads, headDim: Int
        let partial: UnsafeMutablePointer<Float>
    }

    /// One split: partial holds, per head, the unnormalized output [headDim], then the maximum score
    /// and the sum of exp(score − maximum). Positions go four at a time: their four key (value) rows
    /// stay in L1 while every head reads its group's slice of them, and each head's four products
    /// are independent chains of FMAs.
    private static func attend<E: KVElement>(
        _ split: Split, keys allKeys: UnsafeMutablePointer<E>, values allValues: UnsafeMutablePointer<E>
    ) {
        let (heads, kvHeads, headDim, partial) = (split.heads, split.kvHeads, split.headDim, split.partial)
        let (n, group, kvw) = (split.positions.count, heads / kvHeads, kvHeads * headDim)
        let scale = 1 / Float(headDim).squareRoot()
        let first = split.positions.lowerBound * kvw
        let (keys, values) = (UnsafePointer(allKeys + first), UnsafePointer(allValues + first))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: heads * splitLength) { buffer in
            let scores = buffer.baseAddress!
            forEachQuad(n, kvw, prefetching: keys) { j, width, rows in
                for g in 0..<kvHeads {
                    let k = offset(keys + g * headDim, rows)
                    for h in (g * group)..<((g + 1) * group) {
                        let d = dot4(split.q + h * headDim, k, count: headDim) * scale
                        for i in 0..<width { scores[h * splitLength + j + i] = d[i] }
                    }
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
            forEachQuad(n, kvw, prefetching: values) { j, width, rows in
                for g in 0..<kvHeads {
                    let v = offset(values + g * headDim, rows)
                    for h in (g * group)..<((g + 1) * group) {
                        var p = SIMD4<Float>()
                        for i in 0..<width { p[i] = scores[h * splitLength + j + i] }
                        axpy4(p, v, partial + h * (headDim + 2), count: headDim)
                    }
                }
            }
        }
    }

    /// Four rows' offsets (row · width) in a [n, width] matrix.
    typealias Quad = (Int, Int, Int, Int)

    /// Rows ahead of the four in use that `forEachQuad` asks the cache for.
    static let prefetchDistance = 8

    /// Calls body(j, count, rows) for j = 0, 4, 8, … < n: count = min(4, n − j) rows from j, and their
    /// offsets (row · width) in `matrix`, [n, width], the rows past n − 1 given as row n − 1 (read,
    /// never counted); before each call, asks for the four rows `prefetchDistance` further on.
    @inline(__always)
    private static func forEachQuad<E>(
        _ n: Int, _ width: Int, prefetching matrix: UnsafePointer<E>, _ body: (Int, Int, Quad) -> Void
    ) {
        let last = n - 1
        for j in stride(from: 0, to: n, by: 4) {
            let ahead = min(j + prefetchDistance, n)
            let lineElements = 64 / MemoryLayout<E>.stride
            for line in stride(from: ahead * width, to: min(ahead + 4, n) * width, by: lineElements) {
                kumo_prefetch(matrix + line)
            }
            body(
                j, min(4, n - j),
                (j * width, min(j + 1, last) * width, min(j + 2, last) * width, min(j + 3, last) * width))
        }
    }

    /// q·k_i for four rows k_i, `count` floats each.
    @inline(__always)
    static func dot4<E: KVElement>(_ q: UnsafePointer<Float>, _ k: Rows<E>, count: Int) -> SIMD4<Float> {
        var (a0, a1, a2, a3) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        var i = 0
        while i + 8 <= count {
            let x = q.load8(i)
            a0.addProduct(x, E.load8(k.0, i))
            a1.addProduct(x, E.load8(k.1, i))
            a2.addProduct(x, E.load8(k.2, i))
            a3.addProduct(x, E.load8(k.3, i))
            i += 8
        }
        var d = SIMD4(hsum(a0), hsum(a1), hsum(a2), hsum(a3))
        while i < count {
            d += q[i] * SIMD4(E.float(k.0, i), E.float(k.1, i), E.float(k.2, i), E.float(k.3, i))
            i += 1
        }
        return d
    }

    /// y += Σ_i p[i]·v_i over `count` floats for four rows v_i.
    @inline(__always)
    static func axpy4<E: KVElement>(_ p: SIMD4<Float>, _ v: Rows<E>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let (p0, p1, p2, p3) = (
            SIMD8(repeating: p[0]), SIMD8(repeating: p[1]), SIMD8(repeating: p[2]), SIMD8(repeating: p[3])
        )
        var i = 0
        while i + 8 <= count {
            var s = y.load8(i)
            s.addProduct(p0, E.load8(v.0, i))
            s.addProduct(p1, E.load8(v.1, i))
            s.addProduct(p2, E.load8(v.2, i))
            s.addProduct(p3, E.load8(v.3, i))
            y.store8(i, s)
            i += 8
        }
        while i < count {
            y[i] += p[0] * E.float(v.0, i) + p[1] * E.float(v.1, i) + p[2] * E.float(v.2, i) + p[3] * E.float(v.3, i)
            i += 1
        }
    }

    /// The four rows of `quad` from `base`.
    @inline(__always)
    static func offset<E>(_ base: UnsafePointer<E>, _ quad: Quad) -> Rows<E> {
        (base + quad.0, base + quad.1, base + quad.2, base + quad.3)
    }

    /// Four rows of keys or values.
    typealias Rows<E> = (UnsafePointer<E>, UnsafePointer<E>, UnsafePointer<E>, UnsafePointer<E>)

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
