import Foundation
import KumoCore

/// Attention of one new query row per sequence against that sequence's cached keys and values
/// (positions 0...position), for grouped-query heads.
enum DecodeAttention {
    /// out[b] = softmax(q[b]·Kᵀ/√d)·V per query head, with K, V the cache rows 0...positions[b] of
    /// slot slots[b]. q and out are [rows, heads·headDim]; `scratch` holds rows·heads·capacity floats.
    static func forward(
        q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, cache: KVCache, layer: Int,
        slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>, rows: Int, heads: Int, kvHeads: Int,
        headDim: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let qWidth = heads * headDim
        let kvWidth = kvHeads * headDim
        let group = heads / kvHeads
        let scale = 1 / Float(headDim).squareRoot()
        parallelFor(rows * heads) { task in
            let b = task / heads
            let h = task % heads
            let g = h / group
            let n = Int(positions[b]) + 1
            let keys = UnsafePointer(cache.keys(slot: Int(slots[b]), layer: layer)) + g * headDim
            let values = UnsafePointer(cache.values(slot: Int(slots[b]), layer: layer)) + g * headDim
            let qh = q + b * qWidth + h * headDim
            let scores = scratch + task * cache.capacity
            var maxScore = -Float.infinity
            for j in 0..<n {
                let s = dotProduct(qh, keys + j * kvWidth, count: headDim) * scale
                scores[j] = s
                maxScore = max(maxScore, s)
            }
            var total: Float = 0
            for j in 0..<n {
                let e = expf(scores[j] - maxScore)
                scores[j] = e
                total += e
            }
            let o = out + b * qWidth + h * headDim
            o.update(repeating: 0, count: headDim)
            let inv = 1 / total
            for j in 0..<n { axpy(scores[j] * inv, values + j * kvWidth, o, headDim) }
        }
    }

    @inline(__always)
    private static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            y.store8(i, y.load8(i).addingProduct(SIMD8(repeating: alpha), x.load8(i)))
            i += 8
        }
        while i < n {
            y[i] += alpha * x[i]
            i += 1
        }
    }
}
