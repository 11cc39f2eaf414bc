import KumoCore
import XCTest

/// The split-KV decode attention kernel equals a naive softmax attention over the cached rows.
final class DecodeAttentionKernelTests: XCTestCase {
    private func random(_ count: Int, _ rng: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
    }

    /// softmax(q·Kᵀ/√d)·V per head in Double, one head at a time over every cached row.
    private func naive(
        q: [Float], keys: [Float], values: [Float], length: Int, heads: Int, kvHeads: Int, headDim: Int
    ) -> [Float] {
        let kvw = kvHeads * headDim
        var out = [Float](repeating: 0, count: heads * headDim)
        for h in 0..<heads {
            let g = h / (heads / kvHeads)
            let scores = (0..<length).map { j in
                (0..<headDim).reduce(0.0) {
                    $0 + Double(q[h * headDim + $1]) * Double(keys[j * kvw + g * headDim + $1])
                }
                    / Double(headDim).squareRoot()
            }
            let m = scores.max()!
            let e = scores.map { Foundation.exp($0 - m) }
            let total = e.reduce(0, +)
            for d in 0..<headDim {
                let sum = (0..<length).reduce(0.0) { $0 + e[$1] * Double(values[$1 * kvw + g * headDim + d]) }
                out[h * headDim + d] = Float(sum / total)
            }
        }
        return out
    }

    /// Rows of several lengths (within one split, at split edges, over many splits) over one shared
    /// cache, at 1 and 2 threads, for grouped-query shapes, with keys and values stored as `format`
    /// (the naive attention reads the same rounded values).
    private func checkEqualsNaiveAttention(_ format: KVCacheFormat) {
        let shapes = [(heads: 9, kvHeads: 3, headDim: 64), (heads: 4, kvHeads: 1, headDim: 20), (2, 2, 8)]
        let lengths = [1, 7, 255, 256, 257, 700, 2048]
        var rng = SeededRandom(seed: 11)
        for (heads, kvHeads, headDim) in shapes {
            let capacity = lengths.max()!
            let stored: ([Float]) -> [Float] = { format == .bf16 ? $0.map(BF16.rounded) : $0 }
            let keys = stored(random(capacity * kvHeads * headDim, &rng))
            let values = stored(random(capacity * kvHeads * headDim, &rng))
            let q = random(lengths.count * heads * headDim, &rng)
            let expected = lengths.enumerated().flatMap { b, n in
                naive(
                    q: Array(q[(b * heads * headDim)...]), keys: keys, values: values, length: n, heads: heads,
                    kvHeads: kvHeads, headDim: headDim)
            }
            let (k32, v32) = (FloatBuffer(keys), FloatBuffer(values))
            let (k16, v16) = (BF16Buffer(count: keys.count), BF16Buffer(count: values.count))
            BF16.round(k32.pointer, into: k16.pointer, count: keys.count)
            BF16.round(v32.pointer, into: v16.pointer, count: values.count)
            let (k, v): (KVRows, KVRows) =
                format == .bf16 ? (.bf16(k16.pointer), .bf16(v16.pointer)) : (.fp32(k32.pointer), .fp32(v32.pointer))
            for threads in [1, 2] {
                Threads.set(threads)
                defer { Threads.set(1) }
                let (qs, out) = (FloatBuffer(q), FloatBuffer(count: q.count))
                let scratch = FloatBuffer(
                    count: DecodeAttentionKernel.scratchFloats(
                        rows: lengths.count, heads: heads, headDim: headDim, capacity: capacity))
                let rows = lengths.enumerated().map { b, n in
                    DecodeAttentionKernel.Row(
                        q: qs.pointer + b * heads * headDim, out: out.pointer + b * heads * headDim, keys: k, values: v,
                        length: n)
                }
                DecodeAttentionKernel.forward(
                    rows, heads: heads, kvHeads: kvHeads, headDim: headDim, scratch: scratch.pointer)
                let worst = zip(out.array, expected).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(
                    worst, 1e-5, "\(format), heads \(heads)/\(kvHeads) × \(headDim), \(threads) threads: \(worst)")
            }
        }
    }

    func testEqualsNaiveAttentionAtSeveralLengths() {
        checkEqualsNaiveAttention(.fp32)
    }

    /// A bf16 cache is read as the fp32 values its bf16 elements stand for.
    func testBF16RowsEqualNaiveAttentionOverTheRoundedValues() {
        checkEqualsNaiveAttention(.bf16)
    }
}
