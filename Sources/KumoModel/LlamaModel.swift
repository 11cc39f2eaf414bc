import KumoCore

/// A LLaMA-family decoder, or one pipeline stage of it (a `ModelShard`), with explicit forward
/// and backward passes on preallocated buffers. Parameters and gradients are one flat buffer
/// each, laid out by `ParameterLayout`. Several micro-batches can be in flight at once, each in
/// its own activation slot.
public final class LlamaModel {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// The part of the model this instance holds (the whole model unless built for a stage or a tensor slice).
    public var shard: ModelShard { layout.shard }
    /// The collectives of tensor parallelism (nil: the model's tensors are whole on this rank).
    public let tensorParallel: (any TensorParallelOps)?
    /// The all-to-all of expert parallelism (nil: this rank holds every expert).
    public let expertParallel: (any ExpertParallelOps)?
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
    /// One activation state per micro-batch slot, created on first use.
    private var states: [ForwardState] = []
    /// Backward's scratch (and recompute's block output), shared by the slots: one backward runs at a time.
    private var scratch: BackwardScratch?
    /// Under recompute: the buffers every slot shares.
    private var shared: SharedActivations?
    /// Under stage recompute: the slot whose activations the shared buffers hold (set by its
    /// forward, cleared by a backward), whose backward needs no re-forward.
    private var resident: Int?
    /// Called during `backward` with each range of the flat gradient buffer that holds its final
    /// values for the pass, from the top of the buffer down: the final norm and head, each block
    /// from the last to the first, then the embedding (of those the shard holds). Data
    /// parallelism starts communication here.
    public var gradientsReady: ((Range<Int>) -> Void)?
    /// Called before forward reads the parameters of a stage: the embedding, each (local) block
    /// from the first to the last, then the head (final norm and output projection). ZeRO-3 gathers them here.
    public var beforeForward: ((ParameterStage) -> Void)?
    /// Called before backward reads the parameters of a stage: the head, then each (local) block
    /// from the last to the first (the embedding's backward reads no parameters).
    public var beforeBackward: ((ParameterStage) -> Void)?
    /// Whether blocks keep their activations for backward or recompute them there, block by block
    /// or the whole stage from its input (read when a forward pass allocates its buffers).
    public var recompute: ActivationRecompute = .none
    /// The precision of the matrix products: under bf16 each stage's weights are rounded into a
    /// bf16 copy as forward reaches them (after any gather), which that forward and the backward
    /// use; master weights, gradients, norms, softmax and the loss stay fp32.
    public var precision: Precision = .fp32 {
        didSet { paramsBF16 = precision == .bf16 ? BF16Buffer(count: layout.count) : nil }
    }
    /// The bf16 copy of `params` (same layout; only the matrices that enter products are
    /// filled), under bf16 precision.
    private var paramsBF16: BF16Buffer?
    /// The weight of a pass's router losses in the loss backward differentiates (a mixture of
    /// experts): 1 for one pass, 1/passes when a step's gradient averages several micro-batches.
    public var routerLossWeight: Float = 1

    /// Allocates a zero model; call `initializeWeights` or load parameters before use. Without
    /// `wholeGradients` no gradient buffer is allocated and `gradientMemory` must be set.
    public convenience init(config: ModelConfig, wholeGradients: Bool = true) throws(ModelConfigError) {
        try self.init(config: config, shard: .whole(config), wholeGradients: wholeGradients)
    }

    /// A zero model that only runs forward passes (loaded to generate, evaluate or convert): no
    /// gradient buffer, and the parameters on 2 MiB pages, as decoding streams all of them every
    /// token. Training keeps 4 KiB pages: ZeRO-3 hands pages of the parameters back to the kernel,
    /// which would fill a huge-page range again to collapse it.
    public convenience init(inferenceOf config: ModelConfig) throws(ModelConfigError) {
        try self.init(config: config, shard: .whole(config), wholeGradients: false, hugePages: true)
    }

    /// A model holding `shard` of the whole (a pipeline stage, a tensor-parallel slice or both):
    /// its tensor-parallel slices communicate through `tensorParallel`, which a shard split over
    /// several tensor ranks needs. `hugePages` puts the parameters on 2 MiB pages (`init(inferenceOf:)`).
    public init(
        config: ModelConfig, shard: ModelShard, tensorParallel: (any TensorParallelOps)? = nil,
        expertParallel: (any ExpertParallelOps)? = nil, wholeGradients: Bool = true, hugePages: Bool = false
    ) throws(ModelConfigError) {
        try config.validate()
        try shard.validate(config)
        precondition(shard.tensorSize == (tensorParallel?.size ?? 1), "the tensor group does not match the shard")
        precondition(shard.expertSize == (expertParallel?.size ?? 1), "the expert group does not match the shard")
        self.config = config
        self.tensorParallel = tensorParallel
        self.expertParallel = expertParallel
        var local = config
        local.intermediateSize = shard.intermediate(config)
        local.vocabSize = shard.vocab(config)
        self.local = local
        layout = ParameterLayout(config, shard: shard)
        params = FloatBuffer(count: layout.count, hugePages: hugePages)
        grads = FloatBuffer(count: wholeGradients ? layout.count : 0)
        rope = RoPETable(headDim: config.headDim, maxPositions: config.maxPositionEmbeddings, theta: config.ropeTheta)
        sharding = RowSharding(ops: tensorParallel)
        block = TransformerBlock(config: local, rope: rope, sharding: sharding)
    }

    /// Seeded initialisation: projections and embeddings N(0, std²), norm weights 1. A shard
    /// draws only its own elements, at their places in the whole model's stream, so it holds what
    /// a one-rank run would without the whole model ever being in memory.
    public func initializeWeights(seed: UInt64, std: Double = 0.02) {
        // Element i of the whole model's matrices, taken in order, is normal draw i of one seeded
        // stream; a shard draws only the elements it holds, skipping to each run's position.
        let whole = ParameterLayout(config)
        var firstDraw: [String: Int] = [:]
        var draws = 0
        for t in whole.tensors where t.shape.count > 1 {
            firstDraw[t.name] = draws - t.offset
            draws += t.count
        }
        for t in layout.tensors {
            let local = t.offset..<t.offset + t.count
            guard let first = firstDraw[t.name] else {
                (params.pointer + t.offset).update(repeating: 1, count: t.count)
                continue
            }
            for run in layout.runs(in: whole, within: local) {
                var rng = SeededRandom(seed: seed)
                rng.skipNormals(first + run.whole)
                let p = params.pointer + run.local
                for i in 0..<run.count { p[i] = Float(rng.normal() * std) }
            }
        }
    }

    /// Sets every gradient to zero.
    public func zeroGrads() { grads.zero() }

    /// Logits of the last forward pass in slot 0 ([batch·seq, vocab], this rank's vocabulary
    /// columns); after `lossAndBackward` they hold ∂L/∂logits instead.
    public var logits: UnsafeMutablePointer<Float> { logits(slot: 0) }

    /// The routing of `slot`'s last forward pass over the mixture layers (nil for a dense model).
    public func routerStatistics(slot: Int = 0) -> RouterStatistics? {
        config.isMoE && slot < states.count ? states[slot].router : nil
    }

    /// Logits of `slot`'s last forward pass (a stage with the head); backward reads ∂L/∂logits here.
    public func logits(slot: Int) -> UnsafeMutablePointer<Float> {
        precondition(shard.hasHead && slot < states.count, "forward has not run in slot \(slot)")
        return states[slot].logits.pointer
    }

    /// Bytes of activation and scratch memory allocated for the micro-batch slots in use (0 before any forward).
    public var activationBytesAllocated: Int {
        states.reduce(0) { $0 + $1.bytes } + 4 * ((scratch?.floatCount ?? 0) + (shared?.floatCount ?? 0))
    }

    /// The state of `slot` for (batch, seqLen); a new shape drops every slot's buffers.
    private func prepare(slot: Int, batch: Int, seqLen: Int) -> ForwardState {
        precondition(seqLen <= config.maxPositionEmbeddings, "sequence length exceeds max_position_embeddings")
        precondition(
            !sharding.splitsRows || (batch * seqLen) % tensorParallel!.size == 0,
            "sequence parallelism needs batch × seqLen rows divisible by the tensor size")
        if let s = states.first, s.shape.batch != batch || s.shape.seqLen != seqLen || s.recompute != recompute {
            states = []
            scratch = nil
            shared = nil
            resident = nil
        }
        let shape = AttentionShape(
            batch: batch, seqLen: seqLen, heads: shard.heads(config), kvHeads: shard.kvHeads(config),
            headDim: config.headDim)
        let experts = expertParallel.map { (ops: $0, local: shard.experts(config)) }
        if recompute != .none && shared == nil {
            shared = SharedActivations(local, shard, shape, recompute, experts: experts)
        }
        while states.count <= slot {
            states.append(ForwardState(local, shard, shape, recompute, shared: shared, experts: experts))
        }
        if scratch == nil { scratch = BackwardScratch(local, shape: shape, tensorParallel: tensorParallel != nil) }
        return states[slot]
    }

    private func state(_ slot: Int) -> ForwardState {
        precondition(slot < states.count, "backward before forward in slot \(slot)")
        return states[slot]
    }

    /// The vocabulary rows of the embedding and head this rank holds.
    private var heldVocabulary: Range<Int> { shard.vocabStart(config)..<shard.vocabStart(config) + local.vocabSize }

    private func blockWeights(_ i: Int) -> BlockWeights {
        BlockWeights(
            base: params.pointer + layout.blockStart(i), layout: layout.block,
            baseBF16: paramsBF16.map { $0.pointer + layout.blockStart(i) })
    }

    /// The output projection's weight rows this rank holds.
    private var headRange: Range<Int> { layout.head..<layout.head + local.vocabSize * config.hiddenSize }

    /// Under bf16, rounds the parameters in `range` into their bf16 copy.
    private func roundToBF16(_ range: Range<Int>) {
        guard let paramsBF16 else { return }
        BF16.round(params.pointer + range.lowerBound, into: paramsBF16.pointer + range.lowerBound, count: range.count)
    }

    /// Where backward adds the gradients of `range`.
    private func gradients(_ range: Range<Int>) -> UnsafeMutablePointer<Float> {
        if let gradientMemory { return gradientMemory(range) }
        precondition(grads.count == layout.count, "a model without whole gradients needs gradientMemory")
        return grads.pointer + range.lowerBound
    }

    /// Runs the model on `batch` sequences of `seqLen` token ids (with `positions`, the tokens'
    /// positions in the documents packed into each sequence); returns the logits.
    @discardableResult
    public func forward(
        tokens: UnsafePointer<Int32>, batch: Int, seqLen: Int, positions: UnsafePointer<Int32>? = nil
    ) -> UnsafeMutablePointer<Float> {
        forward(slot: 0, tokens: tokens, batch: batch, seqLen: seqLen, positions: positions)
    }

    /// Where a stage without the embedding takes its input hidden states for `slot`
    /// ([batch·seq, hidden]): write them here, then call `forward(slot:tokens:nil,…)`.
    public func stageInput(slot: Int, batch: Int, seqLen: Int) -> UnsafeMutablePointer<Float> {
        prepare(slot: slot, batch: batch, seqLen: seqLen).residual[0].pointer
    }

    /// Where a stage without the head takes ∂L/∂(its output) for `slot` before `backward(slot:…)`;
    /// after that backward it holds ∂L/∂(its input), for the previous stage. Under stage recompute
    /// the slots share it: write it just before the slot's backward, read it before the next one.
    public func hiddenGradient(slot: Int) -> UnsafeMutablePointer<Float> { state(slot).dx.pointer }

    /// Forward of the shard in `slot`: from `tokens` through the embedding (the first stage) or
    /// from `stageInput`, through its blocks; returns the logits (the last stage) or its output
    /// hidden states, which the next stage takes as input. With `positions` ([batch·seqLen], every
    /// stage the same), each token's position in its document: RoPE rotates by it and the token
    /// attends only to its document's tokens up to itself (see `AttentionKernel`); the slot keeps
    /// a copy for its backward. Under stage recompute the slots share the output hidden states: read
    /// them before the next forward.
    @discardableResult
    public func forward(
        slot: Int, tokens: UnsafePointer<Int32>?, batch: Int, seqLen: Int, positions: UnsafePointer<Int32>? = nil
    ) -> UnsafeMutablePointer<Float> {
        let s = prepare(slot: slot, batch: batch, seqLen: seqLen)
        s.setPositions(positions)
        guard let scratch else { preconditionFailure("prepare allocates the scratch") }
        let rows = batch * seqLen
        let h = config.hiddenSize
        if shard.hasEmbedding {
            guard let tokens else { preconditionFailure("the first stage runs from token ids") }
            beforeForward?(.embedding)
            sharding.sum(into: s.residual[0].pointer, scratch: scratch.allRows.pointer, rows: rows, dim: h) { y in
                Embedding.forward(
                    ids: tokens, table: params.pointer + layout.embedding, out: y, rows: rows, dim: h,
                    vocab: config.vocabSize, held: heldVocabulary)
            }
        }
        let layers = shard.layers.count
        s.router = RouterStatistics(experts: config.numLocalExperts)
        for i in 0..<layers {
            beforeForward?(.block(i))
            roundToBF16(layout.blockStart(i)..<layout.blockStart(i) + layout.block.count)
            block.forward(
                s.residual[i].pointer, out: s.residual[i + 1].pointer, blockWeights(i), s.activations(i), scratch,
                s.shape, positions: s.positions)
            if let routed = s.activations(i).router { s.router.add(routed) }
        }
        resident = slot
        guard shard.hasHead else { return s.residual[layers].pointer }
        beforeForward?(.head)
        roundToBF16(headRange)
        finalNorm(s, scratch)
        Linear.forward(
            x: s.finalNormed.pointer, weight: params.pointer + layout.head,
            weightBF16: paramsBF16.map { UnsafePointer($0.pointer + layout.head) }, y: s.logits.pointer, rows: rows,
            inFeatures: h, outFeatures: local.vocabSize)
        return s.logits.pointer
    }

    /// The final norm of the stage's output, into `finalNormed` and `finalRstd`.
    private func finalNorm(_ s: ForwardState, _ scratch: BackwardScratch) {
        sharding.norm(
            s.residual[shard.layers.count].pointer, weight: params.pointer + layout.finalNorm,
            y: s.finalNormed.pointer, rstd: s.finalRstd.pointer, rows: s.shape.batch * s.shape.seqLen,
            dim: config.hiddenSize, eps: Float(config.rmsNormEps), local: scratch.ownRows.pointer)
    }

    /// Under stage recompute: refills the shared buffers with `s`'s forward from its kept stage input,
    /// block by block after each `beforeForward` (the bf16 copy is still the slot forward's), without
    /// counting the routing again; then, on the stage with the head, the final norm. Below the head
    /// the last block's output goes to `scratch.dn` (backward does not read it), leaving the stage
    /// output, which a send may still be reading, as it is.
    private func reforward(_ s: ForwardState, _ scratch: BackwardScratch) {
        let layers = shard.layers.count
        for i in 0..<layers {
            beforeForward?(.block(i))
            let out = i == layers - 1 && !shard.hasHead ? scratch.dn.pointer : s.residual[i + 1].pointer
            block.forward(
                s.residual[i].pointer, out: out, blockWeights(i), s.activations(i), scratch, s.shape,
                positions: s.positions)
        }
        guard shard.hasHead else { return }
        beforeForward?(.head)
        finalNorm(s, scratch)
    }

    /// Backpropagates ∂L/∂logits (held in `logits`) through the last forward pass on `tokens`,
    /// adding into `grads`.
    public func backward(tokens: UnsafePointer<Int32>) { backward(slot: 0, tokens: tokens) }

    /// Backpropagates through `slot`'s forward pass, adding into the gradients: from ∂L/∂logits
    /// in `logits(slot:)` (the last stage) or ∂L/∂output in `hiddenGradient(slot:)`, down to the
    /// embedding (the first stage, which needs `tokens`); returns ∂L/∂(the stage's input).
    @discardableResult
    public func backward(slot: Int, tokens: UnsafePointer<Int32>?) -> UnsafeMutablePointer<Float> {
        let s = state(slot)
        guard let scratch else { preconditionFailure("backward before forward") }
        let rows = s.shape.batch * s.shape.seqLen
        let h = config.hiddenSize
        let layers = shard.layers.count
        if s.recompute == .stage && resident != slot { reforward(s, scratch) }
        resident = nil
        if shard.hasHead {
            beforeBackward?(.head)
            Linear.backward(
                dy: s.logits.pointer, x: s.finalNormed.pointer, weight: params.pointer + layout.head,
                weightBF16: paramsBF16.map { UnsafePointer($0.pointer + layout.head) }, dx: scratch.dn.pointer,
                dweight: gradients(headRange),
                rows: rows, inFeatures: h, outFeatures: local.vocabSize)
            RMSNormKernel.backward(
                dy: sharding.reduce(scratch.dn.pointer, rows: rows, dim: h, into: scratch.ownRows.pointer),
                x: s.residual[layers].pointer, weight: params.pointer + layout.finalNorm,
                rstd: s.finalRstd.pointer, dx: s.dx.pointer,
                dweight: gradients(layout.finalNorm..<layout.finalNorm + h),
                rows: sharding.localRows(rows), dim: h, accumulate: false)
            gradientsReady?(layout.finalNorm..<layout.count)
        }
        let routerLoss = config.isMoE ? s.router.lossGradient(config, weight: routerLossWeight) : nil
        for i in stride(from: layers - 1, through: 0, by: -1) {
            beforeBackward?(.block(i))
            let range = layout.blockStart(i)..<layout.blockStart(i) + layout.block.count
            let g = BlockWeights(base: gradients(range), layout: layout.block)
            if s.recompute == .full {
                // Refills the shared activations from the kept block input; the output goes to
                // scratch.dn, which the block's backward overwrites before reading.
                block.forward(
                    s.residual[i].pointer, out: scratch.dn.pointer, blockWeights(i), s.activations(i), scratch,
                    s.shape, positions: s.positions)
            }
            block.backward(
                s.dx.pointer, s.residual[i].pointer, blockWeights(i), g, s.activations(i), scratch, s.shape,
                positions: s.positions, routerLoss: routerLoss)
            gradientsReady?(range)
        }
        if shard.hasEmbedding {
            guard let tokens else { preconditionFailure("the first stage's backward needs the token ids") }
            Embedding.backward(
                ids: tokens, dout: sharding.gather(s.dx.pointer, rows: rows, dim: h, into: scratch.allRows.pointer),
                dtable: gradients(layout.embedding..<layout.blocksStart), rows: rows, dim: h, held: heldVocabulary)
            gradientsReady?(0..<layout.blocksStart)
        }
        return s.dx.pointer
    }

    /// Forward (with `positions`, as `forward(slot:tokens:batch:seqLen:positions:)`), softmax
    /// cross-entropy against `targets` (ignore index -100) and backward, with L = gradScale · Σ
    /// token losses. Returns the summed loss and the number of scored tokens.
    public func lossAndBackward(
        inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, batch: Int, seqLen: Int,
        positions: UnsafePointer<Int32>? = nil, gradScale: Float
    ) -> (lossSum: Double, count: Int) {
        let logits = forward(tokens: inputs, batch: batch, seqLen: seqLen, positions: positions)
        let result = lossGradient(logits: logits, targets: targets, rows: batch * seqLen, gradScale: gradScale)
        backward(tokens: inputs)
        return result
    }

    /// Softmax cross-entropy of `rows` rows of this rank's logits against `targets` (ignore index
    /// -100), replaced in place by ∂L/∂logits for L = gradScale · Σ token losses; under tensor
    /// parallelism over the vocabulary split across the tensor group. Returns the summed loss
    /// and the number of scored tokens; `rowLosses`, when given, receives each row's loss (0 where
    /// not scored).
    public func lossGradient(
        logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, gradScale: Float,
        rowLosses: UnsafeMutablePointer<Double>? = nil
    ) -> (lossSum: Double, count: Int) {
        guard let tensorParallel else {
            return CrossEntropyKernel.forwardBackward(
                logits: logits, targets: targets, rows: rows, vocab: config.vocabSize, gradScale: gradScale,
                rowLosses: rowLosses)
        }
        return VocabParallelCrossEntropy.forwardBackward(
            logits: logits, targets: targets, rows: rows, held: heldVocabulary, gradScale: gradScale,
            ops: tensorParallel, rowLosses: rowLosses)
    }

    /// Columns of a logits row this rank holds (the vocabulary, or its share under tensor parallelism).
    public var logitsWidth: Int { local.vocabSize }
}
