import KumoCore

/// Attention of one new query row per sequence against that sequence's cached keys and values
/// (positions 0...position), for grouped-query heads.
enum DecodeAttention {
    /// out[b] = softmax(q[b]·Kᵀ/√d)·V per query head, with K, V the cache rows 0...positions[b] of
    /// slot slots[b]. q and out are [rows, heads·headDim]; `scratch` holds `scratchFloats` floats.
    static func forward(
        q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, cache: KVCache, layer: Int,
        slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>, rows: Int, heads: Int, kvHeads: Int,
        headDim: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let qWidth = heads * headDim
        let queries = (0..<rows).map { b in
            DecodeAttentionKernel.Row(
                q: q + b * qWidth, out: out + b * qWidth, keys: cache.keys(slot: Int(slots[b]), layer: layer),
                values: cache.values(slot: Int(slots[b]), layer: layer), length: Int(positions[b]) + 1)
        }
        DecodeAttentionKernel.forward(queries, heads: heads, kvHeads: kvHeads, headDim: headDim, scratch: scratch)
    }

    /// Floats of scratch `forward` needs for `rows` rows over a cache of `capacity` positions.
    static func scratchFloats(_ c: ModelConfig, rows: Int, capacity: Int) -> Int {
        DecodeAttentionKernel.scratchFloats(
            rows: rows, heads: c.numAttentionHeads, headDim: c.headDim, capacity: capacity)
    }
}
