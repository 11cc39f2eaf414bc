import KumoCore

/// The rows of one generation call and where they sit in a `KVCache`.
public struct CacheStep {
    enum Rows {
        /// Rows 0..<count are positions 0..<count of one sequence, whose keys and values fill `slot`.
        case prompt(slot: Int)
        /// Row r is the token at position positions[r] of slot slots[r].
        case tokens(slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>)
    }

    let cache: KVCache
    let rows: Rows

    /// A prompt: its rows are positions 0..<count of `slot`, and attend causally among themselves.
    public static func prompt(_ cache: KVCache, slot: Int) -> CacheStep {
        precondition(slot >= 0 && slot < cache.slots, "cache slot \(slot) out of range")
        return CacheStep(cache: cache, rows: .prompt(slot: slot))
    }

    /// One token per row: row r is position positions[r] of slot slots[r] and attends to that slot's
    /// positions up to its own, rows of the same call included (a slot may appear in several rows).
    public static func tokens(_ cache: KVCache, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>)
        -> CacheStep
    {
        CacheStep(cache: cache, rows: .tokens(slots: slots, positions: positions))
    }
}

/// A generation step as one layer's attention sees it.
struct LayerCache {
    let step: CacheStep
    let layer: Int
    /// Working memory of single-token rows' attention (`DecodeAttention.scratchFloats`).
    let scores: UnsafeMutablePointer<Float>

    /// Where a prompt's keys and values go in an fp32 cache: its slot's rows of this layer (a bf16
    /// cache takes them from the block's activations afterwards, `storePrompt`).
    var promptRows: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)? {
        guard case .prompt(let slot) = step.rows,
            case .fp32(let k) = step.cache.keys(slot: slot, layer: layer),
            case .fp32(let v) = step.cache.values(slot: slot, layer: layer)
        else { return nil }
        return (k, v)
    }

    /// Stores a prompt's `rows` rotated keys and values, [rows, kvWidth] each, in its slot, unless
    /// the block wrote them there itself (`promptRows`).
    func storePrompt(k: UnsafePointer<Float>, v: UnsafePointer<Float>, rows: Int) {
        guard case .prompt(let slot) = step.rows, promptRows == nil else { return }
        step.cache.keys(slot: slot, layer: layer).store(k, count: rows * step.cache.kvWidth)
        step.cache.values(slot: slot, layer: layer).store(v, count: rows * step.cache.kvWidth)
    }

    /// Stores each row's rotated key and value at its position of its slot, then attends each row over
    /// its slot's positions up to its own.
    func appendAndAttend(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
        rows: Int, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>, shape: AttentionShape
    ) {
        let cache = step.cache
        let kvw = cache.kvWidth
        for r in 0..<rows {
            let at = Int(positions[r]) * kvw
            cache.keys(slot: Int(slots[r]), layer: layer).advanced(by: at).store(k + r * kvw, count: kvw)
            cache.values(slot: Int(slots[r]), layer: layer).advanced(by: at).store(v + r * kvw, count: kvw)
        }
        DecodeAttention.forward(
            q: q, out: out, cache: cache, layer: layer, slots: slots, positions: positions, rows: rows,
            heads: shape.heads, kvHeads: shape.kvHeads, headDim: shape.headDim, scratch: scores)
    }
}

/// Working buffers of the blocks during generation, shared by the layers and grown to the largest call.
public final class GenerationBuffers {
    private let config: ModelConfig
    private let capacity: Int
    private var rows = 0
    private(set) var activations: BlockActivations
    private(set) var scores = FloatBuffer(count: 0)
    /// The block's forward reads only its tensor-parallel buffers, which a whole model leaves empty.
    let scratch: BackwardScratch

    /// Buffers for `config`'s blocks over a cache of `capacity` positions per slot.
    public init(config: ModelConfig, capacity: Int) {
        self.config = config
        self.capacity = capacity
        activations = BlockActivations(config, shape: Self.shape(config, rows: 0))
        scratch = BackwardScratch(config, shape: Self.shape(config, rows: 0))
    }

    /// Floats per row these buffers hold: a block's activations (a mixture's routing and its k experts'
    /// products included) and a token's attention over a slot.
    public static func floatsPerRow(_ c: ModelConfig, capacity: Int) -> Int {
        let qw = c.numAttentionHeads * c.headDim
        let kvw = c.numKeyValueHeads * c.headDim
        let sequential = c.parallelLayers ? 0 : 2 * c.hiddenSize + 1
        let routing =
            c.isMoE
            ? RouterActivations.floats(rows: 1, hidden: c.hiddenSize, experts: c.numLocalExperts, k: c.numExpertsPerTok)
            : 0
        return c.hiddenSize + 1 + 2 * qw + 2 * kvw + c.numAttentionHeads + 3 * c.activeExperts * c.intermediateSize
            + sequential + routing + DecodeAttention.scratchFloats(c, rows: 1, capacity: capacity)
    }

    /// Makes the buffers fit `needed` rows (they keep the largest call's size).
    func ensure(rows needed: Int) {
        guard needed > rows else { return }
        rows = needed
        activations = BlockActivations(config, shape: Self.shape(config, rows: needed))
        scores = FloatBuffer(count: DecodeAttention.scratchFloats(config, rows: needed, capacity: capacity))
    }

    private static func shape(_ c: ModelConfig, rows: Int) -> AttentionShape {
        AttentionShape(
            batch: 1, seqLen: rows, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
    }
}

extension LlamaModel {
    /// Block `layer` during generation: out = block(x) for the `rows` rows of `step` (x and out
    /// [rows, hidden], not overlapping), with the norm weights of `weights` and the matrix products of
    /// `projections`. The block's keys and values go to `step`'s cache and its attention reads the
    /// cached positions. The model must be whole (no pipeline stage, no tensor group).
    public func forward<P: BlockProjections>(
        layer: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, weights: BlockWeights,
        projections: P, step: CacheStep, buffers: GenerationBuffers
    ) {
        precondition(shard == .whole(config), "generation needs a whole model (no pipeline stage or tensor slice)")
        buffers.ensure(rows: rows)
        let c = config
        let shape =
            switch step.rows {
            case .prompt:
                AttentionShape(
                    batch: 1, seqLen: rows, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads,
                    headDim: c.headDim)
            case .tokens:
                AttentionShape(
                    batch: rows, seqLen: 1, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads,
                    headDim: c.headDim)
            }
        let cache = LayerCache(step: step, layer: layer, scores: buffers.scores.pointer)
        block.forward(x, out: out, weights, projections, buffers.activations, buffers.scratch, shape, cache: cache)
        cache.storePrompt(k: buffers.activations.k.pointer, v: buffers.activations.v.pointer, rows: rows)
    }
}
