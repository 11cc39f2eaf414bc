/// One named parameter tensor inside the model's flat parameter buffer.
public struct ParameterTensor: Sendable, Equatable {
    /// Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public var name: String
    /// Row-major shape ([out, in] for projections, as in PyTorch).
    public var shape: [Int]
    /// Offset in floats from the start of the flat buffer.
    public var offset: Int
    /// Whether AdamW's weight decay applies (not to norm weights).
    public var decay: Bool
    /// Where this rank's piece lies in the whole tensor (nil: it holds the whole tensor).
    public var slice: TensorSlice? = nil
    /// Tensor-parallel ranks that hold identical copies of this piece (norm weights: all of them).
    public var replicas: Int = 1
    /// Whether this is one of a mixture's experts (held by one rank of an expert group; every other
    /// tensor is replicated over it).
    public var expert = false
    /// Element count.
    public var count: Int { shape.reduce(1, *) }
    /// The whole tensor's shape.
    public var globalShape: [Int] {
        guard let slice else { return shape }
        var s = shape
        s[slice.dim] = slice.total
        return s
    }
}

/// Offsets of one transformer block's tensors relative to the block's start.
public struct BlockLayout: Sendable {
    public let inputNorm, q, k, v, o: Int
    /// Offset of post_attention_layernorm; nil for parallel blocks, which share one norm.
    public let postNorm: Int?
    /// Offset of a mixture's router ([experts, hidden]); nil for a dense MLP.
    public let router: Int?
    /// The first (or only) feed-forward's gate, up and down projections.
    public let gate, up, down: Int
    /// Feed-forward networks in the block (this rank's experts, or the one dense MLP), each laid
    /// out as gate, up, down, `expertStride` floats apart.
    public let experts: Int
    public let expertStride: Int
    /// Floats in one block.
    public let count: Int

    init(_ c: ModelConfig, _ shard: ModelShard) {
        let h = c.hiddenSize
        let qw = shard.heads(c) * c.headDim
        let kvw = shard.kvHeads(c) * c.headDim
        let f = shard.intermediate(c)
        var at = 0
        func take(_ n: Int) -> Int {
            defer { at += n }
            return at
        }
        inputNorm = take(h)
        q = take(qw * h)
        k = take(kvw * h)
        v = take(kvw * h)
        o = take(h * qw)
        postNorm = c.parallelLayers ? nil : take(h)
        router = c.isMoE ? take(c.numLocalExperts * h) : nil
        experts = shard.experts(c)
        expertStride = 3 * f * h
        gate = take(f * h)
        up = take(f * h)
        down = take(h * f)
        at += (experts - 1) * expertStride
        count = at
    }

    /// Offsets of feed-forward `e`'s gate, up and down projections (e < `experts`).
    public func expert(_ e: Int) -> (gate: Int, up: Int, down: Int) {
        let shift = e * expertStride
        return (gate + shift, up + shift, down + shift)
    }
}

/// Where every parameter of a rank's shard lives in its flat buffer: the embedding, then each
/// block's tensors contiguously (so a block is one range for sharding and gradient buckets), then
/// the final norm and, unless tied to the embedding, the output projection. A shard without the
/// embedding or the head (a pipeline stage) has an empty range in its place.
public struct ParameterLayout: Sendable {
    public let config: ModelConfig
    /// The part of the whole model this layout holds.
    public let shard: ModelShard
    public let block: BlockLayout
    public let embedding: Int
    /// Start of (local) block i is `blocksStart + i * block.count`.
    public let blocksStart: Int
    public let finalNorm: Int
    /// Offset of the output projection: equal to `embedding` when tied.
    public let head: Int
    /// Total floats.
    public let count: Int
    /// Every tensor in order, with Hugging Face names (global block indices).
    public let tensors: [ParameterTensor]

    /// The layout of the whole model.
    public init(_ c: ModelConfig) { self.init(c, shard: .whole(c)) }

    /// The layout of `shard`, which must have passed `shard.validate(c)`.
    public init(_ c: ModelConfig, shard: ModelShard) {
        config = c
        self.shard = shard
        block = BlockLayout(c, shard)
        let h = c.hiddenSize
        let t = shard.tensorSize
        let vocab = shard.vocab(c)
        let tied = c.tieWordEmbeddings
        embedding = 0
        blocksStart = shard.hasEmbedding ? vocab * h : 0
        finalNorm = blocksStart + shard.layers.count * block.count
        let headRows = shard.hasHead ? (tied ? 0 : vocab * h) : 0
        head = tied ? embedding : finalNorm + (shard.hasHead ? h : 0)
        count = finalNorm + (shard.hasHead ? h : 0) + headRows
        func rows(_ start: Int, _ count: Int, of total: Int) -> TensorSlice? {
            count == total ? nil : TensorSlice(dim: 0, start: start, count: count, total: total)
        }
        func columns(_ start: Int, _ count: Int, of total: Int) -> TensorSlice? {
            count == total ? nil : TensorSlice(dim: 1, start: start, count: count, total: total)
        }
        let d = c.headDim
        let qw = shard.heads(c) * d
        let kvw = shard.kvHeads(c) * d
        let f = shard.intermediate(c)
        let vocabRows = rows(shard.vocabStart(c), vocab, of: c.vocabSize)
        let qRows = rows(shard.tensorRank * qw, qw, of: c.numAttentionHeads * d)
        let kvRows = rows(shard.firstKVHead(c) * d, kvw, of: c.numKeyValueHeads * d)
        let oColumns = columns(shard.tensorRank * qw, qw, of: c.numAttentionHeads * d)
        let fRows = rows(shard.tensorRank * f, f, of: c.intermediateSize)
        let fColumns = columns(shard.tensorRank * f, f, of: c.intermediateSize)
        let kvReplicas = shard.kvReplicas(c)
        var list: [ParameterTensor] = []
        if shard.hasEmbedding {
            list.append(
                .init(name: "model.embed_tokens.weight", shape: [vocab, h], offset: 0, decay: true, slice: vocabRows))
        }
        for (local, i) in shard.layers.enumerated() {
            let base = blocksStart + local * block.count
            let p = "model.layers.\(i)."
            list.append(
                .init(
                    name: p + "input_layernorm.weight", shape: [h], offset: base + block.inputNorm, decay: false,
                    replicas: t))
            list.append(
                .init(
                    name: p + "self_attn.q_proj.weight", shape: [qw, h], offset: base + block.q, decay: true,
                    slice: qRows))
            list.append(
                .init(
                    name: p + "self_attn.k_proj.weight", shape: [kvw, h], offset: base + block.k, decay: true,
                    slice: kvRows, replicas: kvReplicas))
            list.append(
                .init(
                    name: p + "self_attn.v_proj.weight", shape: [kvw, h], offset: base + block.v, decay: true,
                    slice: kvRows, replicas: kvReplicas))
            list.append(
                .init(
                    name: p + "self_attn.o_proj.weight", shape: [h, qw], offset: base + block.o, decay: true,
                    slice: oColumns))
            if let post = block.postNorm {
                list.append(
                    .init(
                        name: p + "post_attention_layernorm.weight", shape: [h], offset: base + post, decay: false,
                        replicas: t))
            }
            if let router = block.router {
                list.append(
                    .init(
                        name: p + "block_sparse_moe.gate.weight", shape: [c.numLocalExperts, h], offset: base + router,
                        decay: true))
                let first = shard.firstExpert(c)
                for e in 0..<block.experts {
                    let at = block.expert(e)
                    let x = p + "block_sparse_moe.experts.\(first + e)."
                    for (name, offset, shape) in [
                        ("w1", at.gate, [f, h]), ("w3", at.up, [f, h]), ("w2", at.down, [h, f]),
                    ] {
                        list.append(
                            .init(
                                name: x + name + ".weight", shape: shape, offset: base + offset, decay: true,
                                expert: true))
                    }
                }
                continue
            }
            list.append(
                .init(
                    name: p + "mlp.gate_proj.weight", shape: [f, h], offset: base + block.gate, decay: true,
                    slice: fRows))
            list.append(
                .init(
                    name: p + "mlp.up_proj.weight", shape: [f, h], offset: base + block.up, decay: true, slice: fRows))
            list.append(
                .init(
                    name: p + "mlp.down_proj.weight", shape: [h, f], offset: base + block.down, decay: true,
                    slice: fColumns))
        }
        if shard.hasHead {
            list.append(.init(name: "model.norm.weight", shape: [h], offset: finalNorm, decay: false, replicas: t))
            if !tied {
                list.append(
                    .init(name: "lm_head.weight", shape: [vocab, h], offset: head, decay: true, slice: vocabRows))
            }
        }
        tensors = list
    }

    /// Offset of local block `i` (the shard's i-th block).
    public func blockStart(_ i: Int) -> Int { blocksStart + i * block.count }

    /// The ranges of a mixture's experts, one per local block (empty for a dense model): the end of
    /// each block, after its router.
    public var expertRanges: [Range<Int>] {
        guard config.isMoE else { return [] }
        return shard.layers.indices.map { blockStart($0) + block.gate..<blockStart($0) + block.count }
    }

    /// The tensor with a Hugging Face name, if the model has it.
    public func tensor(named name: String) -> ParameterTensor? { tensors.first { $0.name == name } }
}

/// A part of the model whose parameters forward or backward reads at once.
public enum ParameterStage: Hashable, Sendable {
    /// The token embedding.
    case embedding
    /// Transformer block i.
    case block(Int)
    /// The final norm and the output projection (the embedding when tied).
    case head
}

extension ParameterLayout {
    /// The ranges of the flat buffer a stage reads.
    public func ranges(of stage: ParameterStage) -> [Range<Int>] {
        switch stage {
        case .embedding: return [embedding..<blocksStart]
        case .block(let i): return [blockStart(i)..<blockStart(i) + block.count]
        case .head:
            return config.tieWordEmbeddings ? [embedding..<blocksStart, finalNorm..<count] : [finalNorm..<count]
        }
    }
}
