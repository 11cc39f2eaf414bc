import KumoCore
import KumoModel

/// Runs a LLaMA-family model for generation: `prefill` pushes a whole prompt through the model with
/// the training kernels (GEMMs, blocked causal attention) and fills the sequence's key/value cache;
/// `decode` then advances several sequences by one token each, attending over their caches.
/// Not thread-safe: one caller at a time (the server's scheduler thread).
public final class InferenceEngine: @unchecked Sendable {
    /// The model whose fp32 parameters the engine reads.
    public let model: LlamaModel
    /// The model's configuration.
    public var config: ModelConfig { model.config }
    /// Keys and values of every sequence slot.
    public let cache: KVCache
    /// The weights decoding's matrix-vector products use.
    public let format: WeightFormat
    private let rope: RoPETable
    private let blocks: [DecodeBlock]
    private let head: DecodeMatrix
    private var scratch = Scratch()

    /// Prepares `slots` cache slots of `capacity` positions (at most max_position_embeddings).
    public init(model: LlamaModel, slots: Int, capacity: Int, format: WeightFormat = .fp32) {
        let c = model.config
        precondition(capacity <= c.maxPositionEmbeddings, "cache capacity beyond max_position_embeddings")
        self.model = model
        self.format = format
        cache = KVCache(config: c, slots: slots, capacity: capacity)
        rope = RoPETable(headDim: c.headDim, maxPositions: capacity, theta: c.ropeTheta)
        let p = model.params.pointer
        blocks = (0..<c.numHiddenLayers).map {
            DecodeBlock(
                BlockWeights(base: p + model.layout.blockStart($0), layout: model.layout.block), c, format: format)
        }
        head = DecodeMatrix(p + model.layout.head, rows: c.vocabSize, columns: c.hiddenSize, format: format)
    }

    /// Fills `slot`'s cache with `tokens` at positions 0..<count and returns the logits after the last
    /// token. With `eachRow`, it is also called with (position, logits) for every prompt position.
    @discardableResult
    public func prefill(
        slot: Int, tokens: [Int32], eachRow: ((Int, UnsafePointer<Float>) -> Void)? = nil
    ) -> [Float] {
        let c = config
        let t = tokens.count
        precondition(t >= 1 && t <= cache.capacity, "prompt of \(t) tokens does not fit the cache")
        let s = scratch.ensure(c, rows: t, prefillLength: t, cache: cache)
        embed(tokens, into: s.x.pointer)
        let shape = AttentionShape(
            batch: 1, seqLen: t, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
        for (i, b) in blocks.enumerated() {
            let keys = cache.keys(slot: slot, layer: i)
            let values = cache.values(slot: slot, layer: i)
            layer(b, rows: t, s, quantized: false) { n in
                let w = b.weights
                let kvw = cache.kvWidth
                Linear.forward(
                    x: n, weight: w.q, y: s.q.pointer, rows: t, inFeatures: c.hiddenSize, outFeatures: b.q.rows)
                Linear.forward(x: n, weight: w.k, y: keys, rows: t, inFeatures: c.hiddenSize, outFeatures: kvw)
                Linear.forward(x: n, weight: w.v, y: values, rows: t, inFeatures: c.hiddenSize, outFeatures: kvw)
                rope.apply(s.q.pointer, rows: t, seqLen: t, heads: shape.heads)
                rope.apply(keys, rows: t, seqLen: t, heads: shape.kvHeads)
                AttentionKernel.forward(
                    q: s.q.pointer, k: keys, v: values, out: s.att.pointer, lse: s.lse.pointer, shape: shape)
            }
        }
        let rowsWanted = eachRow == nil ? (t - 1)..<t : 0..<t
        for lo in stride(from: rowsWanted.lowerBound, to: t, by: Scratch.logitRows) {
            let n = min(Scratch.logitRows, t - lo)
            finalLogits(from: s.x.pointer + lo * c.hiddenSize, rows: n, s, quantized: false)
            for r in 0..<n { eachRow?(lo + r, s.logits.pointer + r * c.vocabSize) }
        }
        let lastRow = (t - 1 - rowsWanted.lowerBound) % Scratch.logitRows
        return Array(UnsafeBufferPointer(start: s.logits.pointer + lastRow * c.vocabSize, count: c.vocabSize))
    }

    /// Feeds `tokens[b]` at position `positions[b]` of slot `slots[b]` for every b (one new token per
    /// sequence, whose earlier positions are cached) and returns the logits, [b, vocab], valid until
    /// the next call. A slot may appear in several rows at distinct positions: each row attends to its
    /// slot's positions up to its own, those fed in the same call included (scoring a continuation
    /// in one call relies on this).
    public func decode(tokens: [Int32], slots: [Int32], positions: [Int32]) -> UnsafePointer<Float> {
        let c = config
        let rows = tokens.count
        precondition(slots.count == rows && positions.count == rows)
        precondition(positions.allSatisfy { $0 >= 0 && Int($0) < cache.capacity }, "position beyond the cache")
        let s = scratch.ensure(c, rows: rows, prefillLength: 0, cache: cache)
        embed(tokens, into: s.x.pointer)
        let kvw = cache.kvWidth
        for (i, b) in blocks.enumerated() {
            layer(b, rows: rows, s, quantized: true) { n in
                b.q.apply(x: n, y: s.q.pointer, count: rows)
                b.k.apply(x: n, y: s.k.pointer, count: rows)
                b.v.apply(x: n, y: s.v.pointer, count: rows)
                positions.withUnsafeBufferPointer { pos in
                    rope.apply(s.q.pointer, rows: rows, positions: pos.baseAddress!, heads: c.numAttentionHeads)
                    rope.apply(s.k.pointer, rows: rows, positions: pos.baseAddress!, heads: c.numKeyValueHeads)
                    for r in 0..<rows {
                        let at = Int(pos[r]) * kvw
                        (cache.keys(slot: Int(slots[r]), layer: i) + at).update(from: s.k.pointer + r * kvw, count: kvw)
                        (cache.values(slot: Int(slots[r]), layer: i) + at).update(
                            from: s.v.pointer + r * kvw, count: kvw)
                    }
                    slots.withUnsafeBufferPointer { sl in
                        DecodeAttention.forward(
                            q: s.q.pointer, out: s.att.pointer, cache: cache, layer: i, slots: sl.baseAddress!,
                            positions: pos.baseAddress!, rows: rows, heads: c.numAttentionHeads,
                            kvHeads: c.numKeyValueHeads, headDim: c.headDim, scratch: s.scores.pointer)
                    }
                }
            }
        }
        finalLogits(from: s.x.pointer, rows: rows, s, quantized: true)
        return UnsafePointer(s.logits.pointer)
    }

    private func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        tokens.withUnsafeBufferPointer {
            Embedding.forward(
                ids: $0.baseAddress!, table: model.params.pointer + model.layout.embedding, out: x,
                rows: tokens.count, dim: config.hiddenSize, vocab: config.vocabSize)
        }
    }

    /// One decoder block in place on s.x: `attention(n)` leaves the attention output in s.att.
    private func layer(
        _ b: DecodeBlock, rows: Int, _ s: Scratch, quantized: Bool, attention: (UnsafePointer<Float>) -> Void
    ) {
        let c = config
        let h = c.hiddenSize
        let eps = Float(c.rmsNormEps)
        let x = s.x.pointer
        RMSNormKernel.forward(
            x: x, weight: b.weights.inputNorm, y: s.n.pointer, rstd: s.rstd.pointer, rows: rows, dim: h, eps: eps)
        attention(s.n.pointer)
        project(b.o, s.att.pointer, x, rows, quantized: quantized, accumulate: true)
        if let postNorm = b.weights.postNorm {
            RMSNormKernel.forward(
                x: x, weight: postNorm, y: s.n.pointer, rstd: s.rstd.pointer, rows: rows, dim: h, eps: eps)
        }
        project(b.gate, s.n.pointer, s.gate.pointer, rows, quantized: quantized)
        project(b.up, s.n.pointer, s.up.pointer, rows, quantized: quantized)
        SwiGLUKernel.forward(
            gate: s.gate.pointer, up: s.up.pointer, out: s.act.pointer, count: rows * c.intermediateSize)
        project(b.down, s.act.pointer, x, rows, quantized: quantized, accumulate: true)
    }

    private func project(
        _ m: DecodeMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ rows: Int,
        quantized: Bool, accumulate: Bool = false
    ) {
        if quantized {
            m.apply(x: x, y: y, count: rows, accumulate: accumulate)
        } else {
            Linear.forward(
                x: x, weight: m.fp32, y: y, rows: rows, inFeatures: m.columns, outFeatures: m.rows,
                accumulate: accumulate)
        }
    }

    /// Final norm and output projection of `rows` (≤ Scratch.logitRows) rows into s.logits.
    private func finalLogits(from x: UnsafePointer<Float>, rows: Int, _ s: Scratch, quantized: Bool) {
        let h = config.hiddenSize
        RMSNormKernel.forward(
            x: x, weight: model.params.pointer + model.layout.finalNorm, y: s.n.pointer, rstd: s.rstd.pointer,
            rows: rows, dim: h, eps: Float(config.rmsNormEps))
        project(head, s.n.pointer, s.logits.pointer, rows, quantized: quantized)
    }
}
