import KumoCore

/// Pointers to one block's tensors inside a flat parameter (or gradient) buffer, and to their
/// bf16 copies where products run in bf16.
public struct BlockWeights {
    public let inputNorm, q, k, v, o: UnsafeMutablePointer<Float>
    public let postNorm: UnsafeMutablePointer<Float>?
    /// A mixture's router (nil: a dense MLP).
    public let router: UnsafeMutablePointer<Float>?
    /// The (first) feed-forward's projections.
    public let gate, up, down: UnsafeMutablePointer<Float>
    private let expertStride: Int
    private let base: UnsafeMutablePointer<Float>
    private let baseBF16: UnsafeMutablePointer<UInt16>?

    /// Views the block that starts at `base` (and its bf16 copy, laid out alike, at `baseBF16`).
    public init(base: UnsafeMutablePointer<Float>, layout l: BlockLayout, baseBF16: UnsafeMutablePointer<UInt16>? = nil)
    {
        self.base = base
        self.baseBF16 = baseBF16
        inputNorm = base + l.inputNorm
        q = base + l.q
        k = base + l.k
        v = base + l.v
        o = base + l.o
        postNorm = l.postNorm.map { base + $0 }
        router = l.router.map { base + $0 }
        expertStride = l.expertStride
        gate = base + l.gate
        up = base + l.up
        down = base + l.down
    }

    /// The gate, up and down projections of feed-forward `e` (a mixture's local expert e).
    public func expert(_ e: Int) -> (
        gate: UnsafeMutablePointer<Float>, up: UnsafeMutablePointer<Float>, down: UnsafeMutablePointer<Float>
    ) {
        let shift = e * expertStride
        return (gate + shift, up + shift, down + shift)
    }

    /// The bf16 copy of the tensor at `tensor` (one of this block's pointers), if products run in bf16.
    func bf16(_ tensor: UnsafeMutablePointer<Float>) -> UnsafePointer<UInt16>? {
        baseBF16.map { UnsafePointer($0 + (tensor - base)) }
    }
}

/// Causal grouped-query self-attention with RoPE: y (+)= o_proj(Attn(rope(q_proj n), rope(k_proj n), v_proj n)).
/// During generation its keys and values go to a key/value cache and it attends over the cached positions.
struct SelfAttention {
    let config: ModelConfig
    let rope: RoPETable

    /// Training (and a prompt's prefill, whose keys and values fill its cache slot) attend within the
    /// rows, causally, or within each document of a row with `positions` (each row's position in its
    /// document, see `AttentionKernel`); single tokens of a generation step attend over their slots'
    /// cached positions.
    func forward<P: BlockProjections>(
        _ n: UnsafePointer<Float>, _ p: P, _ a: BlockActivations, _ shape: AttentionShape,
        positions: UnsafePointer<Int32>? = nil, cache: LayerCache? = nil, y: UnsafeMutablePointer<Float>,
        accumulate: Bool
    ) {
        let rows = shape.batch * shape.seqLen
        let h = config.hiddenSize
        let qw = shape.heads * shape.headDim
        let kvw = shape.kvHeads * shape.headDim
        p.project(.q, x: n, y: a.q.pointer, rows: rows, inFeatures: h, outFeatures: qw, accumulate: false)
        if let cache, case .tokens(let slots, let positions) = cache.step.rows {
            p.project(.k, x: n, y: a.k.pointer, rows: rows, inFeatures: h, outFeatures: kvw, accumulate: false)
            p.project(.v, x: n, y: a.v.pointer, rows: rows, inFeatures: h, outFeatures: kvw, accumulate: false)
            rope.apply(a.q.pointer, rows: rows, positions: positions, heads: shape.heads)
            rope.apply(a.k.pointer, rows: rows, positions: positions, heads: shape.kvHeads)
            cache.appendAndAttend(
                q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.att.pointer, rows: rows, slots: slots,
                positions: positions, shape: shape)
        } else {
            let (k, v) = cache?.promptRows ?? (a.k.pointer, a.v.pointer)
            p.project(.k, x: n, y: k, rows: rows, inFeatures: h, outFeatures: kvw, accumulate: false)
            p.project(.v, x: n, y: v, rows: rows, inFeatures: h, outFeatures: kvw, accumulate: false)
            rope.apply(a.q.pointer, rows: rows, seqLen: shape.seqLen, positions: positions, heads: shape.heads)
            rope.apply(k, rows: rows, seqLen: shape.seqLen, positions: positions, heads: shape.kvHeads)
            AttentionKernel.forward(
                q: a.q.pointer, k: k, v: v, out: a.att.pointer, lse: a.lse.pointer, shape: shape, positions: positions)
        }
        p.project(.o, x: a.att.pointer, y: y, rows: rows, inFeatures: qw, outFeatures: h, accumulate: accumulate)
    }

    /// Accumulates weight gradients into `g` and writes (or adds) ∂L/∂n into `dn`.
    func backward(
        _ dy: UnsafePointer<Float>, _ n: UnsafePointer<Float>, _ w: BlockWeights, _ g: BlockWeights,
        _ a: BlockActivations, _ s: BackwardScratch, _ shape: AttentionShape, positions: UnsafePointer<Int32>? = nil,
        dn: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let rows = shape.batch * shape.seqLen
        let h = config.hiddenSize
        let qw = shape.heads * shape.headDim
        let kvw = shape.kvHeads * shape.headDim
        Linear.backward(
            dy: dy, x: a.att.pointer, weight: w.o, weightBF16: w.bf16(w.o), dx: s.datt.pointer, dweight: g.o,
            rows: rows, inFeatures: qw,
            outFeatures: h)
        AttentionKernel.backward(
            dout: s.datt.pointer, q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.att.pointer,
            lse: a.lse.pointer, dq: s.dq.pointer, dk: s.dk.pointer, dv: s.dv.pointer, shape: shape,
            positions: positions)
        rope.apply(
            s.dq.pointer, rows: rows, seqLen: shape.seqLen, positions: positions, heads: shape.heads, inverse: true)
        rope.apply(
            s.dk.pointer, rows: rows, seqLen: shape.seqLen, positions: positions, heads: shape.kvHeads, inverse: true)
        Linear.backward(
            dy: s.dq.pointer, x: n, weight: w.q, weightBF16: w.bf16(w.q), dx: dn, dweight: g.q, rows: rows,
            inFeatures: h, outFeatures: qw,
            accumulateDx: accumulate)
        Linear.backward(
            dy: s.dk.pointer, x: n, weight: w.k, weightBF16: w.bf16(w.k), dx: dn, dweight: g.k, rows: rows,
            inFeatures: h, outFeatures: kvw,
            accumulateDx: true)
        Linear.backward(
            dy: s.dv.pointer, x: n, weight: w.v, weightBF16: w.bf16(w.v), dx: dn, dweight: g.v, rows: rows,
            inFeatures: h, outFeatures: kvw,
            accumulateDx: true)
    }
}

/// SwiGLU feed-forward: y (+)= down(silu(gate n) · up n).
struct SwiGLUMLP {
    let config: ModelConfig

    func forward<P: BlockProjections>(
        _ n: UnsafePointer<Float>, _ p: P, _ a: BlockActivations, rows: Int,
        y: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let h = config.hiddenSize
        let f = config.intermediateSize
        p.project(.gate, x: n, y: a.gate.pointer, rows: rows, inFeatures: h, outFeatures: f, accumulate: false)
        p.project(.up, x: n, y: a.up.pointer, rows: rows, inFeatures: h, outFeatures: f, accumulate: false)
        SwiGLUKernel.forward(gate: a.gate.pointer, up: a.up.pointer, out: a.act.pointer, count: rows * f)
        p.project(.down, x: a.act.pointer, y: y, rows: rows, inFeatures: f, outFeatures: h, accumulate: accumulate)
    }

    /// Accumulates weight gradients into `g` and writes (or adds) ∂L/∂n into `dn`.
    func backward(
        _ dy: UnsafePointer<Float>, _ n: UnsafePointer<Float>, _ w: BlockWeights, _ g: BlockWeights,
        _ a: BlockActivations, _ s: BackwardScratch, rows: Int, dn: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let h = config.hiddenSize
        let f = config.intermediateSize
        Linear.backward(
            dy: dy, x: a.act.pointer, weight: w.down, weightBF16: w.bf16(w.down), dx: s.dgate.pointer, dweight: g.down,
            rows: rows,
            inFeatures: f, outFeatures: h)
        SwiGLUKernel.backward(
            ds: s.dgate.pointer, gate: a.gate.pointer, up: a.up.pointer, dgate: s.dgate.pointer, dup: s.dup.pointer,
            count: rows * f)
        Linear.backward(
            dy: s.dgate.pointer, x: n, weight: w.gate, weightBF16: w.bf16(w.gate), dx: dn, dweight: g.gate, rows: rows,
            inFeatures: h,
            outFeatures: f, accumulateDx: accumulate)
        Linear.backward(
            dy: s.dup.pointer, x: n, weight: w.up, weightBF16: w.bf16(w.up), dx: dn, dweight: g.up, rows: rows,
            inFeatures: h, outFeatures: f,
            accumulateDx: true)
    }
}

/// A pre-norm decoder block: sequential (x + Attn(Norm x), then + MLP(Norm ·)) or, with
/// `parallel_layers`, x + Attn(Norm x) + MLP(Norm x) with one norm.
struct TransformerBlock {
    let config: ModelConfig
    let attention: SelfAttention
    let mlp: SwiGLUMLP
    /// The sparse feed-forward that replaces `mlp` in a mixture-of-experts model.
    let moe: MixtureOfExperts?
    /// Sums the row-parallel outputs (o_proj, down_proj) forward and ∂L/∂(norm output) of the
    /// column-parallel inputs (q/k/v, gate/up) backward over the tensor group.
    let sharding: RowSharding

    init(config: ModelConfig, rope: RoPETable, sharding: RowSharding = RowSharding(ops: nil)) {
        self.config = config
        self.sharding = sharding
        attention = SelfAttention(config: config, rope: rope)
        mlp = SwiGLUMLP(config: config)
        moe = config.isMoE ? MixtureOfExperts(config: config) : nil
    }

    /// The feed-forward (dense or mixture) of normed rows `n`, written or added into `y`.
    private func feedForward<P: BlockProjections>(
        _ n: UnsafePointer<Float>, _ w: BlockWeights, _ p: P, _ a: BlockActivations, rows: Int,
        y: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        if let moe {
            moe.forward(n, w, a, rows: rows, y: y, accumulate: accumulate)
        } else {
            mlp.forward(n, p, a, rows: rows, y: y, accumulate: accumulate)
        }
    }

    /// The feed-forward's backward: weight gradients into `g`, ∂L/∂n written or added into `dn`.
    private func feedForwardBackward(
        _ dy: UnsafePointer<Float>, _ n: UnsafePointer<Float>, _ w: BlockWeights, _ g: BlockWeights,
        _ a: BlockActivations, _ s: BackwardScratch, rows: Int, routerLoss: RouterLossGradient?,
        dn: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        if let moe {
            moe.backward(dy, n, w, g, a, s, rows: rows, routerLoss: routerLoss, dn: dn, accumulate: accumulate)
        } else {
            mlp.backward(dy, n, w, g, a, s, rows: rows, dn: dn, accumulate: accumulate)
        }
    }

    /// out = block(x); x and out are [rows, hidden] (this rank's rows) and must not overlap. With
    /// `positions`, each document in a row attends only within itself.
    func forward(
        _ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, _ w: BlockWeights, _ a: BlockActivations,
        _ s: BackwardScratch, _ shape: AttentionShape, positions: UnsafePointer<Int32>? = nil
    ) {
        forward(x, out: out, w, w, a, s, shape, positions: positions, cache: nil)
    }

    /// out = block(x) with the norm weights of `w` and the matrix products of `p`; during generation
    /// the attention keeps its keys and values in `cache` and attends over the cached positions.
    func forward<P: BlockProjections>(
        _ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, _ w: BlockWeights, _ p: P,
        _ a: BlockActivations, _ s: BackwardScratch, _ shape: AttentionShape, positions: UnsafePointer<Int32>? = nil,
        cache: LayerCache?
    ) {
        let rows = shape.batch * shape.seqLen
        let h = config.hiddenSize
        let eps = Float(config.rmsNormEps)
        let own = s.ownRows.pointer
        sharding.norm(
            x, weight: w.inputNorm, y: a.n1.pointer, rstd: a.rstd1.pointer, rows: rows, dim: h, eps: eps, local: own)
        if let h1 = a.h1, let n2 = a.n2, let rstd2 = a.rstd2, let postNorm = w.postNorm {
            sharding.residualAdd(x, into: h1.pointer, scratch: s.allRows.pointer, rows: rows, dim: h) { y, accumulate in
                attention.forward(
                    a.n1.pointer, p, a, shape, positions: positions, cache: cache, y: y, accumulate: accumulate)
            }
            sharding.norm(
                h1.pointer, weight: postNorm, y: n2.pointer, rstd: rstd2.pointer, rows: rows, dim: h, eps: eps,
                local: own)
            sharding.residualAdd(h1.pointer, into: out, scratch: s.allRows.pointer, rows: rows, dim: h) {
                y, accumulate in
                feedForward(n2.pointer, w, p, a, rows: rows, y: y, accumulate: accumulate)
            }
        } else {
            sharding.residualAdd(x, into: out, scratch: s.allRows.pointer, rows: rows, dim: h) { y, accumulate in
                attention.forward(
                    a.n1.pointer, p, a, shape, positions: positions, cache: cache, y: y, accumulate: accumulate)
                feedForward(a.n1.pointer, w, p, a, rows: rows, y: y, accumulate: true)
            }
        }
    }

    /// On entry `dx` holds ∂L/∂out; on return ∂L/∂x (this rank's rows). Weight gradients accumulate
    /// into `g`. `positions` are forward's; `routerLoss` is the router losses' gradient of a mixture.
    func backward(
        _ dx: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: BlockWeights, _ g: BlockWeights,
        _ a: BlockActivations, _ s: BackwardScratch, _ shape: AttentionShape, positions: UnsafePointer<Int32>? = nil,
        routerLoss: RouterLossGradient? = nil
    ) {
        let rows = shape.batch * shape.seqLen
        let h = config.hiddenSize
        let own = sharding.localRows(rows)
        let all = s.allRows.pointer
        if let h1 = a.h1, let n2 = a.n2, let rstd2 = a.rstd2, let postNorm = w.postNorm, let gPost = g.postNorm {
            let dy = sharding.gather(dx, rows: rows, dim: h, into: all)
            feedForwardBackward(
                dy, n2.pointer, w, g, a, s, rows: rows, routerLoss: routerLoss, dn: s.dn.pointer, accumulate: false)
            RMSNormKernel.backward(
                dy: sharding.reduce(s.dn.pointer, rows: rows, dim: h, into: s.ownRows.pointer), x: h1.pointer,
                weight: postNorm, rstd: rstd2.pointer, dx: dx, dweight: gPost, rows: own, dim: h, accumulate: true)
            let dh1 = sharding.gather(dx, rows: rows, dim: h, into: all)
            attention.backward(
                dh1, a.n1.pointer, w, g, a, s, shape, positions: positions, dn: s.dn.pointer, accumulate: false)
        } else {
            let dy = sharding.gather(dx, rows: rows, dim: h, into: all)
            feedForwardBackward(
                dy, a.n1.pointer, w, g, a, s, rows: rows, routerLoss: routerLoss, dn: s.dn.pointer, accumulate: false)
            attention.backward(
                dy, a.n1.pointer, w, g, a, s, shape, positions: positions, dn: s.dn.pointer, accumulate: true)
        }
        RMSNormKernel.backward(
            dy: sharding.reduce(s.dn.pointer, rows: rows, dim: h, into: s.ownRows.pointer), x: x,
            weight: w.inputNorm, rstd: a.rstd1.pointer, dx: dx, dweight: g.inputNorm, rows: own, dim: h,
            accumulate: true)
    }
}
