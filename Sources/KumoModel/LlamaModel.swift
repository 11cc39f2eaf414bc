import KumoCore

/// A LLaMA-family decoder with explicit forward and backward passes on preallocated buffers.
/// Parameters and gradients are one flat buffer each, laid out by `ParameterLayout`.
public final class LlamaModel {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// The collectives of tensor parallelism (nil: the model is whole on this rank).
    public let tensorParallel: (any TensorParallelOps)?
    /// The widths this rank computes with: the config with its shard's intermediate size and vocabulary.
    let local: ModelConfig
    /// Where the rows of the residual stream sit on the tensor group.
    let sharding: RowSharding
    /// All parameters, fp32.
    public let params: FloatBuffer
    /// Gradients, same layout as `params`; backward adds into them. Empty for a model built
    /// with `wholeGradients: false`, whose backward writes into `gradientMemory` instead.
    public let grads: FloatBuffer
    /// Where backward writes the gradients of a flat range, when set (ZeRO-2 and 3): memory for
    /// `range.count` floats, the gradient of `range.lowerBound` first, that stays valid and is
    /// only added into until `gradientsReady` reports the range (or the range holding it).
    public var gradientMemory: ((Range<Int>) -> UnsafeMutablePointer<Float>)?
    let rope: RoPETable
    let block: TransformerBlock
    private var state: ForwardState?
    /// Called during `backward` with each range of the flat gradient buffer that holds its final
    /// values for the pass, from the top of the buffer down: the final norm and head, each block
    /// from the last to the first, then the embedding. Data parallelism starts communication here.
    public var gradientsReady: ((Range<Int>) -> Void)?
    /// Called before forward reads the parameters of a stage: the embedding, each block from the
    /// first to the last, then the head (final norm and output projection). ZeRO-3 gathers them here.
    public var beforeForward: ((ParameterStage) -> Void)?
    /// Called before backward reads the parameters of a stage: the head, then each block from the
    /// last to the first (the embedding's backward reads no parameters).
    public var beforeBackward: ((ParameterStage) -> Void)?

    /// Buffers sized for one (batch, seqLen): the residual stream, per-block activations,
    /// the final norm, the logits and the backward scratch.
    final class ForwardState {
        let shape: AttentionShape
        let residual: [FloatBuffer]
        let blocks: [BlockActivations]
        let finalNormed, finalRstd, logits, dx: FloatBuffer
        let scratch: BackwardScratch

        init(_ c: ModelConfig, _ shape: AttentionShape, tensorParallel: Bool) {
            self.shape = shape
            let rows = shape.batch * shape.seqLen
            residual = (0...c.numHiddenLayers).map { _ in FloatBuffer(count: rows * c.hiddenSize) }
            blocks = (0..<c.numHiddenLayers).map { _ in BlockActivations(c, shape: shape) }
            finalNormed = FloatBuffer(count: rows * c.hiddenSize)
            finalRstd = FloatBuffer(count: rows)
            logits = FloatBuffer(count: rows * c.vocabSize)
            dx = FloatBuffer(count: rows * c.hiddenSize)
            scratch = BackwardScratch(c, shape: shape, tensorParallel: tensorParallel)
        }
    }

    /// Allocates a zero model; call `initializeWeights` or load parameters before use. Without
    /// `wholeGradients` no gradient buffer is allocated and `gradientMemory` must be set.
    public convenience init(config: ModelConfig, wholeGradients: Bool = true) throws(ModelConfigError) {
        try self.init(config: config, shard: .whole(config), wholeGradients: wholeGradients)
    }

    /// A model holding `shard` of the whole: its tensor-parallel slices communicate through
    /// `tensorParallel`, which a shard split over several tensor ranks needs.
    public init(
        config: ModelConfig, shard: ModelShard, tensorParallel: (any TensorParallelOps)? = nil,
        wholeGradients: Bool = true
    ) throws(ModelConfigError) {
        try config.validate()
        try shard.validate(config)
        precondition(shard.tensorSize == (tensorParallel?.size ?? 1), "the tensor group does not match the shard")
        self.config = config
        self.tensorParallel = tensorParallel
        var local = config
        local.intermediateSize = shard.intermediate(config)
        local.vocabSize = shard.vocab(config)
        self.local = local
        layout = ParameterLayout(config, shard: shard)
        params = FloatBuffer(count: layout.count)
        grads = FloatBuffer(count: wholeGradients ? layout.count : 0)
        rope = RoPETable(headDim: config.headDim, maxPositions: config.maxPositionEmbeddings, theta: config.ropeTheta)
        sharding = RowSharding(ops: tensorParallel)
        block = TransformerBlock(config: local, rope: rope, sharding: sharding)
    }

    /// Seeded initialisation: projections and embeddings N(0, std²), norm weights 1. A shard
    /// draws the whole model and keeps its part, so it holds what a one-rank run would.
    public func initializeWeights(seed: UInt64, std: Double = 0.02) {
        if layout.shard.isWhole(config) {
            Self.initialize(params.pointer, layout, seed: seed, std: std)
            return
        }
        let whole = ParameterLayout(config)
        let buffer = FloatBuffer(count: whole.count)
        Self.initialize(buffer.pointer, whole, seed: seed, std: std)
        layout.copyShard(from: buffer.pointer, wholeLayout: whole, into: params.pointer)
    }

    private static func initialize(
        _ params: UnsafeMutablePointer<Float>, _ layout: ParameterLayout, seed: UInt64, std: Double
    ) {
        var rng = SeededRandom(seed: seed)
        for t in layout.tensors {
            let p = params + t.offset
            if t.shape.count == 1 {
                p.update(repeating: 1, count: t.count)
            } else {
                for i in 0..<t.count { p[i] = Float(rng.normal() * std) }
            }
        }
    }

    /// Sets every gradient to zero.
    public func zeroGrads() { grads.zero() }

    /// Logits of the last forward pass ([batch·seq, vocab], this rank's vocabulary columns); after `lossAndBackward` they hold
    /// ∂L/∂logits instead.
    public var logits: UnsafeMutablePointer<Float> {
        guard let s = state else { preconditionFailure("forward has not run") }
        return s.logits.pointer
    }

    /// Bytes of activation and scratch memory for a micro-batch of `batch` × `seqLen` tokens.
    public static func activationBytes(_ c: ModelConfig, batch: Int, seqLen: Int) -> Int {
        let rows = batch * seqLen
        let h = c.hiddenSize
        let qw = c.numAttentionHeads * c.headDim
        let kvw = c.numKeyValueHeads * c.headDim
        let probs = batch * c.numAttentionHeads * seqLen * seqLen
        let perBlock =
            rows * (h + 1 + qw + 2 * kvw + qw + 3 * c.intermediateSize) + probs
            + (c.parallelLayers ? 0 : rows * (2 * h + 1))
        let scratch =
            rows * (2 * qw + 2 * kvw + h + 2 * c.intermediateSize)
            + AttentionKernel.scratchCount(
                AttentionShape(
                    batch: batch, seqLen: seqLen, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads,
                    headDim: c.headDim))
        let rest = (c.numHiddenLayers + 1) * rows * h + rows * (2 * h + 1) + rows * c.vocabSize
        return 4 * (c.numHiddenLayers * perBlock + scratch + rest)
    }

    private func prepare(batch: Int, seqLen: Int) -> ForwardState {
        precondition(seqLen <= config.maxPositionEmbeddings, "sequence length exceeds max_position_embeddings")
        precondition(
            !sharding.splitsRows || (batch * seqLen) % tensorParallel!.size == 0,
            "sequence parallelism needs batch × seqLen rows divisible by the tensor size")
        if let s = state, s.shape.batch == batch, s.shape.seqLen == seqLen { return s }
        state = nil
        let shape = AttentionShape(
            batch: batch, seqLen: seqLen, heads: layout.shard.heads(config), kvHeads: layout.shard.kvHeads(config),
            headDim: config.headDim)
        let s = ForwardState(local, shape, tensorParallel: tensorParallel != nil)
        state = s
        return s
    }

    /// The vocabulary rows of the embedding and head this rank holds.
    private var heldVocabulary: Range<Int> {
        layout.shard.vocabStart(config)..<layout.shard.vocabStart(config) + local.vocabSize
    }

    private func blockWeights(_ buffer: FloatBuffer, _ i: Int) -> BlockWeights {
        BlockWeights(base: buffer.pointer + layout.blockStart(i), layout: layout.block)
    }

    /// Where backward adds the gradients of `range`.
    private func gradients(_ range: Range<Int>) -> UnsafeMutablePointer<Float> {
        if let gradientMemory { return gradientMemory(range) }
        precondition(grads.count == layout.count, "a model without whole gradients needs gradientMemory")
        return grads.pointer + range.lowerBound
    }

    /// Runs the model on `batch` sequences of `seqLen` token ids; returns the logits.
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, batch: Int, seqLen: Int) -> UnsafeMutablePointer<Float> {
        let s = prepare(batch: batch, seqLen: seqLen)
        let rows = batch * seqLen
        let h = config.hiddenSize
        beforeForward?(.embedding)
        sharding.sum(into: s.residual[0].pointer, scratch: s.scratch.allRows.pointer, rows: rows, dim: h) { y in
            VocabParallelEmbedding.forward(
                ids: tokens, table: params.pointer + layout.embedding, out: y, rows: rows, dim: h,
                held: heldVocabulary, vocab: config.vocabSize)
        }
        for i in 0..<config.numHiddenLayers {
            beforeForward?(.block(i))
            block.forward(
                s.residual[i].pointer, out: s.residual[i + 1].pointer, blockWeights(params, i), s.blocks[i], s.scratch,
                s.shape)
        }
        beforeForward?(.head)
        sharding.norm(
            s.residual[config.numHiddenLayers].pointer, weight: params.pointer + layout.finalNorm,
            y: s.finalNormed.pointer, rstd: s.finalRstd.pointer, rows: rows, dim: h, eps: Float(config.rmsNormEps),
            local: s.scratch.ownRows.pointer)
        Linear.forward(
            x: s.finalNormed.pointer, weight: params.pointer + layout.head, y: s.logits.pointer, rows: rows,
            inFeatures: h, outFeatures: local.vocabSize)
        return s.logits.pointer
    }

    /// Backpropagates ∂L/∂logits (held in `logits`) through the last forward pass on `tokens`,
    /// adding into `grads`.
    public func backward(tokens: UnsafePointer<Int32>) {
        guard let s = state else { preconditionFailure("backward before forward") }
        let rows = s.shape.batch * s.shape.seqLen
        let h = config.hiddenSize
        let layers = config.numHiddenLayers
        beforeBackward?(.head)
        Linear.backward(
            dy: s.logits.pointer, x: s.finalNormed.pointer, weight: params.pointer + layout.head,
            dx: s.scratch.dn.pointer, dweight: gradients(layout.head..<layout.head + local.vocabSize * h), rows: rows,
            inFeatures: h,
            outFeatures: local.vocabSize)
        RMSNormKernel.backward(
            dy: sharding.reduce(s.scratch.dn.pointer, rows: rows, dim: h, into: s.scratch.ownRows.pointer),
            x: s.residual[layers].pointer, weight: params.pointer + layout.finalNorm,
            rstd: s.finalRstd.pointer, dx: s.dx.pointer, dweight: gradients(layout.finalNorm..<layout.finalNorm + h),
            rows: sharding.localRows(rows), dim: h,
            accumulate: false)
        gradientsReady?(layout.finalNorm..<layout.count)
        for i in stride(from: layers - 1, through: 0, by: -1) {
            beforeBackward?(.block(i))
            let range = layout.blockStart(i)..<layout.blockStart(i) + layout.block.count
            let g = BlockWeights(base: gradients(range), layout: layout.block)
            block.backward(
                s.dx.pointer, s.residual[i].pointer, blockWeights(params, i), g, s.blocks[i], s.scratch, s.shape)
            gradientsReady?(range)
        }
        VocabParallelEmbedding.backward(
            ids: tokens, dout: sharding.gather(s.dx.pointer, rows: rows, dim: h, into: s.scratch.allRows.pointer),
            dtable: gradients(layout.embedding..<layout.blocksStart), rows: rows,
            dim: h, held: heldVocabulary)
        gradientsReady?(0..<layout.blocksStart)
    }

    /// Forward, softmax cross-entropy against `targets` (ignore index -100) and backward, with
    /// L = gradScale · Σ token losses. Returns the summed loss and the number of scored tokens.
    public func lossAndBackward(
        inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, batch: Int, seqLen: Int, gradScale: Float
    ) -> (lossSum: Double, count: Int) {
        let logits = forward(tokens: inputs, batch: batch, seqLen: seqLen)
        let result =
            if let tensorParallel {
                VocabParallelCrossEntropy.forwardBackward(
                    logits: logits, targets: targets, rows: batch * seqLen, held: heldVocabulary, gradScale: gradScale,
                    ops: tensorParallel)
            } else {
                CrossEntropyKernel.forwardBackward(
                    logits: logits, targets: targets, rows: batch * seqLen, vocab: config.vocabSize,
                    gradScale: gradScale)
            }
        backward(tokens: inputs)
        return result
    }
}
