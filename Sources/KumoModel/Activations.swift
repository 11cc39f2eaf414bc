import KumoCore

/// Whether a block's internal activations are kept from forward to backward (`none`), dropped
/// and recomputed from the block's input just before its backward (`full`), or whether a
/// micro-batch keeps only its stage input and its backward re-runs the stage's forward from it
/// into buffers all micro-batches share (`stage`; skipped when the backward directly follows
/// the micro-batch's own forward, whose buffers are still there).
public enum ActivationRecompute: String, Sendable, CaseIterable {
    case none, full, stage
}

/// The tensors one block keeps from forward for its backward pass, for `rows` = batch·seq.
final class BlockActivations {
    let n1, rstd1, q, k, v, att: FloatBuffer
    /// Each attention row's logsumexp ([B, H, T]), from which backward recomputes the probabilities.
    let lse: FloatBuffer
    /// Sequential blocks only: the residual after attention, its norm and 1/rms.
    let h1, n2, rstd2: FloatBuffer?
    /// The feed-forward's products, [rows·(experts per token), intermediate].
    let gate, up, act: FloatBuffer
    /// A mixture's routing (nil: a dense MLP).
    let router: RouterActivations?

    /// Buffers for `c`'s block over `shape`; under expert parallelism (`experts`: the expert group and
    /// this rank's experts) a mixture's expert products live on the expert side of an exchange.
    init(_ c: ModelConfig, shape: AttentionShape, experts: (ops: any ExpertParallelOps, local: Int)? = nil) {
        let rows = shape.batch * shape.seqLen
        let h = c.hiddenSize
        n1 = FloatBuffer(count: rows * h)
        rstd1 = FloatBuffer(count: rows)
        q = FloatBuffer(count: rows * shape.heads * shape.headDim)
        k = FloatBuffer(count: rows * shape.kvHeads * shape.headDim)
        v = FloatBuffer(count: rows * shape.kvHeads * shape.headDim)
        lse = FloatBuffer(count: shape.logsumexpCount)
        att = FloatBuffer(count: rows * shape.heads * shape.headDim)
        if c.parallelLayers {
            (h1, n2, rstd2) = (nil, nil, nil)
        } else {
            h1 = FloatBuffer(count: rows * h)
            n2 = FloatBuffer(count: rows * h)
            rstd2 = FloatBuffer(count: rows)
        }
        let ffn = experts == nil ? rows * c.activeExperts * c.intermediateSize : 0
        gate = FloatBuffer(count: ffn)
        up = FloatBuffer(count: ffn)
        act = FloatBuffer(count: ffn)
        let exchange = experts.map {
            ExpertExchange(ops: $0.ops, hidden: h, ffn: c.intermediateSize, localExperts: $0.local)
        }
        router =
            c.isMoE
            ? RouterActivations(
                rows: rows, hidden: h, experts: c.numLocalExperts, k: c.numExpertsPerTok, exchange: exchange) : nil
    }

    /// Floats allocated by these buffers.
    var floatCount: Int {
        [n1, rstd1, q, k, v, lse, att, gate, up, act].reduce(0) { $0 + $1.count }
            + [h1, n2, rstd2].reduce(0) { $0 + ($1?.count ?? 0) } + (router?.floatCount ?? 0)
    }
}

/// Scratch for the backward pass, shared by all blocks.
final class BackwardScratch {
    let dq, dk, dv, datt, dn, dgate, dup: FloatBuffer
    /// A mixture's ∂L/∂(expert outputs) and ∂L/∂(expert inputs) ([rows·k, hidden]) and its router's
    /// ∂L/∂logits ([rows, experts]); empty for a dense MLP.
    let expertOutputGrad, expertInputGrad, routerGrad: FloatBuffer
    /// Under expert parallelism: backward's buffers on the expert side, grown to the largest load.
    let expertSide = ExpertSideScratch()
    /// Tensor parallelism only: [rows, hidden] for partial row-parallel outputs and gathered
    /// gradients, and for the rank's own rows under sequence parallelism (forward uses them too).
    let allRows, ownRows: FloatBuffer

    init(_ c: ModelConfig, shape: AttentionShape, tensorParallel: Bool = false) {
        let rows = shape.batch * shape.seqLen
        allRows = FloatBuffer(count: tensorParallel ? rows * c.hiddenSize : 0)
        ownRows = FloatBuffer(count: tensorParallel ? rows * c.hiddenSize : 0)
        dq = FloatBuffer(count: rows * shape.heads * shape.headDim)
        dk = FloatBuffer(count: rows * shape.kvHeads * shape.headDim)
        dv = FloatBuffer(count: rows * shape.kvHeads * shape.headDim)
        datt = FloatBuffer(count: rows * shape.heads * shape.headDim)
        dn = FloatBuffer(count: rows * c.hiddenSize)
        dgate = FloatBuffer(count: rows * c.activeExperts * c.intermediateSize)
        dup = FloatBuffer(count: rows * c.activeExperts * c.intermediateSize)
        let routed = c.isMoE ? rows * c.numExpertsPerTok * c.hiddenSize : 0
        expertOutputGrad = FloatBuffer(count: routed)
        expertInputGrad = FloatBuffer(count: routed)
        routerGrad = FloatBuffer(count: c.isMoE ? rows * c.numLocalExperts : 0)
    }

    /// Floats allocated by these buffers.
    var floatCount: Int {
        [dq, dk, dv, datt, dn, dgate, dup, allRows, ownRows, expertOutputGrad, expertInputGrad, routerGrad].reduce(0) {
            $0 + $1.count
        } + expertSide.floatCount
    }
}

/// Backward's buffers on the expert side of an `ExpertExchange`: the experts' output and input
/// gradients and their gate and up gradients, shared by the blocks.
final class ExpertSideScratch {
    let outputGrad = GrowingBuffer(), inputGrad = GrowingBuffer()
    let gateGrad = GrowingBuffer(), upGrad = GrowingBuffer()

    /// Floats held.
    var floatCount: Int { [outputGrad, inputGrad, gateGrad, upGrad].reduce(0) { $0 + $1.buffer.count } }
}
