import KumoCore
import KumoModel

/// Runs a LLaMA-family model for generation through the model's own decoder blocks: `prefill` pushes
/// a whole prompt through them (blocked causal attention) and fills the sequence's key/value cache;
/// `decode` then advances several sequences by one token each, with matrix-vector kernels, attending
/// over their caches. A prompt of up to `F32MatVec.maxInputRows` tokens multiplies as decoding does
/// (its cost is its few tokens', with int8 weights in int8 mode); a longer one through GEMMs on the
/// fp32 weights, as in training.
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
    private let blocks: [DecodeBlock]
    private let head: DecodeMatrix
    private let scratch: Scratch

    /// Prepares `slots` cache slots of `capacity` positions (at most max_position_embeddings), stored as `kvCache`.
    public init(
        model: LlamaModel, slots: Int, capacity: Int, format: WeightFormat = .fp32, kvCache: KVCacheFormat = .fp32
    ) {
        let c = model.config
        precondition(capacity <= c.maxPositionEmbeddings, "cache capacity beyond max_position_embeddings")
        precondition(format.isSupported, "--weights \(format.rawValue) is not supported on this CPU")
        self.model = model
        self.format = format
        cache = KVCache(config: c, slots: slots, capacity: capacity, format: kvCache)
        let p = model.params.pointer
        blocks = (0..<c.numHiddenLayers).map {
            DecodeBlock(
                BlockWeights(base: p + model.layout.blockStart($0), layout: model.layout.block), c, format: format)
        }
        // Buffers for a short prompt or a batch are allocated (their pages touched) here, not by the first call.
        scratch = Scratch(config: c, capacity: capacity).ensure(c, rows: Scratch.logitRows)
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
        let s = scratch.ensure(c, rows: t)
        let step = CacheStep.prompt(cache, slot: slot)
        let hidden =
            t <= F32MatVec.maxInputRows
            ? runBlocks(tokens, s, step: step) { $0 } : runBlocks(tokens, s, step: step) { $0.weights }
        let rowsWanted = eachRow == nil ? (t - 1)..<t : 0..<t
        for lo in stride(from: rowsWanted.lowerBound, to: t, by: Scratch.logitRows) {
            let n = min(Scratch.logitRows, t - lo)
            finalLogits(from: hidden + lo * c.hiddenSize, rows: n, s, quantized: n <= F32MatVec.maxInputRows)
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
        let rows = tokens.count
        precondition(slots.count == rows && positions.count == rows)
        precondition(positions.allSatisfy { $0 >= 0 && Int($0) < cache.capacity }, "position beyond the cache")
        precondition(slots.allSatisfy { $0 >= 0 && Int($0) < cache.slots }, "cache slot out of range")
        let s = scratch.ensure(config, rows: rows)
        let hidden = slots.withUnsafeBufferPointer { sl in
            positions.withUnsafeBufferPointer { pos in
                runBlocks(tokens, s, step: .tokens(cache, slots: sl.baseAddress!, positions: pos.baseAddress!)) { $0 }
            }
        }
        finalLogits(from: hidden, rows: rows, s, quantized: true)
        return UnsafePointer(s.logits.pointer)
    }

    /// Embeds `tokens` and runs every block on them, the block's products done by
    /// `projections(block)`; returns the last block's output (in s.x or s.y).
    private func runBlocks<P: BlockProjections>(
        _ tokens: [Int32], _ s: Scratch, step: CacheStep, projections: (DecodeBlock) -> P
    ) -> UnsafePointer<Float> {
        var (x, y) = (s.x.pointer, s.y.pointer)
        embed(tokens, into: x)
        for (i, b) in blocks.enumerated() {
            model.forward(
                layer: i, x: x, out: y, rows: tokens.count, weights: b.weights, projections: projections(b),
                step: step, buffers: s.blocks)
            swap(&x, &y)
        }
        return UnsafePointer(x)
    }

    private func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        tokens.withUnsafeBufferPointer {
            Embedding.forward(
                ids: $0.baseAddress!, table: model.params.pointer + model.layout.embedding, out: x,
                rows: tokens.count, dim: config.hiddenSize, vocab: config.vocabSize)
        }
    }

    /// Final norm and output projection of `rows` (≤ Scratch.logitRows) rows into s.logits: decoding's
    /// matrix-vector kernel when `quantized`, else prefill's GEMM on the fp32 weights.
    private func finalLogits(from x: UnsafePointer<Float>, rows: Int, _ s: Scratch, quantized: Bool) {
        let h = config.hiddenSize
        RMSNormKernel.forward(
            x: x, weight: model.params.pointer + model.layout.finalNorm, y: s.n.pointer, rstd: s.rstd.pointer,
            rows: rows, dim: h, eps: Float(config.rmsNormEps))
        if quantized {
            head.apply(x: s.n.pointer, y: s.logits.pointer, count: rows)
        } else {
            Linear.forward(
                x: s.n.pointer, weight: head.fp32, y: s.logits.pointer, rows: rows, inFeatures: h,
                outFeatures: head.rows)
        }
    }
}
