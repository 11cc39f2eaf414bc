import KumoCore

/// The buffers every micro-batch slot shares under recompute: `full`'s one set of block tensors,
/// or `stage`'s inputs of the blocks past the first, the stage's output, every block's tensors, the
/// final norm and ∂L/∂x, which a slot's backward refills from its kept stage input.
final class SharedActivations {
    let residual: [FloatBuffer]
    let blocks: [BlockActivations]
    let finalNormed, finalRstd, dx: FloatBuffer?

    init(
        _ c: ModelConfig, _ shard: ModelShard, _ shape: AttentionShape, _ recompute: ActivationRecompute,
        experts: (ops: any ExpertParallelOps, local: Int)?
    ) {
        precondition(recompute != .none, "recompute none keeps every buffer per slot")
        let rows = shape.batch * shape.seqLen
        let layers = recompute == .full ? 1 : shard.layers.count
        blocks = (0..<layers).map { _ in BlockActivations(c, shape: shape, experts: experts) }
        guard recompute == .stage else {
            (residual, finalNormed, finalRstd, dx) = ([], nil, nil, nil)
            return
        }
        residual = (0..<layers).map { _ in FloatBuffer(count: rows * c.hiddenSize) }
        let head = shard.hasHead ? 1 : 0
        finalNormed = FloatBuffer(count: head * rows * c.hiddenSize)
        finalRstd = FloatBuffer(count: head * rows)
        dx = FloatBuffer(count: rows * c.hiddenSize)
    }

    /// Floats allocated by these buffers.
    var floatCount: Int {
        (residual + [finalNormed, finalRstd, dx].compactMap { $0 }).reduce(0) { $0 + $1.count }
            + blocks.reduce(0) { $0 + $1.floatCount }
    }
}

extension LlamaModel {
    /// Buffers of one micro-batch slot, sized for one (batch, seqLen): the residual stream
    /// (the stage's input first), per-block activations, the final norm, the logits (the last
    /// stage only), ∂L/∂(hidden states) flowing down and the tokens' positions in their documents,
    /// which backward and recompute read. Under recompute some of them are `SharedActivations`':
    /// `full` shares the block tensors, `stage` everything but the stage input, logits and positions.
    final class ForwardState {
        let shape: AttentionShape
        let recompute: ActivationRecompute
        let residual: [FloatBuffer]
        let blocks: [BlockActivations]
        let finalNormed, finalRstd, logits, dx: FloatBuffer
        /// The routing of the last forward pass over the mixture layers (empty for a dense model).
        var router: RouterStatistics
        private let positionStore: UnsafeMutableBufferPointer<Int32>
        /// The positions of the last forward pass in this slot (nil: each row is one sequence).
        private(set) var positions: UnsafePointer<Int32>?
        /// Floats of the buffers this slot allocated itself.
        private let ownFloats: Int

        init(
            _ c: ModelConfig, _ shard: ModelShard, _ shape: AttentionShape, _ recompute: ActivationRecompute,
            shared: SharedActivations?, experts: (ops: any ExpertParallelOps, local: Int)?
        ) {
            self.shape = shape
            self.recompute = recompute
            let rows = shape.batch * shape.seqLen
            let head = shard.hasHead ? 1 : 0
            var own: [FloatBuffer] = []
            func allocate(_ count: Int) -> FloatBuffer {
                own.append(FloatBuffer(count: count))
                return own.last!
            }
            let kept = recompute == .stage ? 1 : shard.layers.count + 1
            residual = (0..<kept).map { _ in allocate(rows * c.hiddenSize) } + (shared?.residual ?? [])
            finalNormed = shared?.finalNormed ?? allocate(head * rows * c.hiddenSize)
            finalRstd = shared?.finalRstd ?? allocate(head * rows)
            logits = allocate(head * rows * c.vocabSize)
            dx = shared?.dx ?? allocate(rows * c.hiddenSize)
            let ownBlocks =
                shared == nil
                ? (0..<shard.layers.count).map { _ in BlockActivations(c, shape: shape, experts: experts) } : []
            blocks = shared?.blocks ?? ownBlocks
            ownFloats = own.reduce(0) { $0 + $1.count } + ownBlocks.reduce(0) { $0 + $1.floatCount }
            router = RouterStatistics(experts: c.numLocalExperts)
            positionStore = .allocate(capacity: rows)
        }

        deinit { positionStore.deallocate() }

        /// Keeps a copy of `positions` ([batch·seqLen], each 0 ≤ positions[t] ≤ t's offset in its row)
        /// for this slot's pass, or nil.
        func setPositions(_ positions: UnsafePointer<Int32>?) {
            guard let positions else {
                self.positions = nil
                return
            }
            for i in positionStore.indices {
                precondition(
                    positions[i] >= 0 && Int(positions[i]) <= i % shape.seqLen,
                    "position \(positions[i]) at row offset \(i % shape.seqLen)")
                positionStore[i] = positions[i]
            }
            self.positions = UnsafePointer(positionStore.baseAddress!)
        }

        /// The activations block `i` writes in forward and reads in backward.
        func activations(_ i: Int) -> BlockActivations { blocks[recompute == .full ? 0 : i] }

        /// Bytes allocated by this slot's own buffers (not the shared ones).
        var bytes: Int { 4 * ownFloats + 4 * positionStore.count }
    }

    /// Bytes of activation and scratch memory a model holding `shard` (the whole model by default)
    /// allocates for `slots` micro-batches in flight of `batch` × `seqLen` tokens: per slot the
    /// residual stream, each block's kept tensors, the final norm and logits on the stage with the
    /// head, ∂L/∂x and the positions; once, backward's scratch (with the row buffers of tensor
    /// parallelism) and what recompute shares: under `full` one block's tensors, under `stage`
    /// everything of a slot but its stage input, logits and positions. Equal to
    /// `activationBytesAllocated` after the slots are used; under expert parallelism the experts'
    /// side is counted at a balanced load (it grows to the largest load a step brings).
    public static func activationBytes(
        _ c: ModelConfig, shard: ModelShard? = nil, batch: Int, seqLen: Int, recompute: ActivationRecompute = .none,
        slots: Int = 1
    ) -> Int {
        let shard = shard ?? .whole(c)
        let rows = batch * seqLen
        let h = c.hiddenSize
        let heads = shard.heads(c)
        let (q, kv) = (heads * c.headDim, shard.kvHeads(c) * c.headDim)
        let ffn = shard.intermediate(c) * c.activeExperts
        let routing =
            c.isMoE
            ? RouterActivations.floats(rows: rows, hidden: h, experts: c.numLocalExperts, k: c.numExpertsPerTok) : 0
        // Under expert parallelism the experts' rows live on the exchange's expert side: at a balanced
        // load as many as the token side's, plus the inputs, outputs and rows in transit.
        let exchanged = c.isMoE && shard.expertSize > 1 ? rows * c.numExpertsPerTok * h : 0
        let block =
            rows * (h + 1 + q + 2 * kv + heads + q + 3 * ffn) + (c.parallelLayers ? 0 : rows * (2 * h + 1)) + routing
            + 3 * exchanged
        let layers = shard.layers.count
        let (finalNorm, logits) = shard.hasHead ? (rows * (h + 1), rows * shard.vocab(c)) : (0, 0)
        // A slot with everything kept, but its logits and positions: residual stream, blocks, final norm, ∂L/∂x.
        let kept = (layers + 1) * rows * h + layers * block + finalNorm + rows * h
        let (slot, shared): (Int, Int)
        switch recompute {
        case .none: (slot, shared) = (kept, 0)
        case .full: (slot, shared) = (kept - layers * block, block)
        case .stage: (slot, shared) = (rows * h, kept - rows * h)
        }
        let tensorRows = shard.tensorSize > 1 ? 2 * rows * h : 0
        let expertGrads = c.isMoE ? rows * (2 * c.numExpertsPerTok * h + c.numLocalExperts) : 0
        let expertSide = exchanged > 0 ? 2 * exchanged + 2 * rows * ffn : 0
        let scratch = rows * (2 * q + 2 * kv + h + 2 * ffn) + expertGrads + expertSide + tensorRows
        return 4 * (slots * (slot + logits + rows) + shared + scratch)
    }
}
