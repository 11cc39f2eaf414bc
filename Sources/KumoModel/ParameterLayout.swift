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
    /// Element count.
    public var count: Int { shape.reduce(1, *) }
}

/// Offsets of one transformer block's tensors relative to the block's start.
public struct BlockLayout: Sendable {
    public let inputNorm, q, k, v, o: Int
    /// Offset of post_attention_layernorm; nil for parallel blocks, which share one norm.
    public let postNorm: Int?
    public let gate, up, down: Int
    /// Floats in one block.
    public let count: Int

    init(_ c: ModelConfig) {
        let h = c.hiddenSize
        let qw = c.numAttentionHeads * c.headDim
        let kvw = c.numKeyValueHeads * c.headDim
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
        gate = take(c.intermediateSize * h)
        up = take(c.intermediateSize * h)
        down = take(h * c.intermediateSize)
        count = at
    }
}

/// Where every parameter lives in the flat buffer: the embedding, then each block's tensors
/// contiguously (so a block is one range for sharding and gradient buckets), then the final
/// norm and, unless tied to the embedding, the output projection.
public struct ParameterLayout: Sendable {
    public let config: ModelConfig
    public let block: BlockLayout
    public let embedding: Int
    /// Start of block i is `blocksStart + i * block.count`.
    public let blocksStart: Int
    public let finalNorm: Int
    /// Offset of the output projection: equal to `embedding` when tied.
    public let head: Int
    /// Total floats.
    public let count: Int
    /// Every tensor in order, with Hugging Face names.
    public let tensors: [ParameterTensor]

    /// Computes the layout of a configuration.
    public init(_ c: ModelConfig) {
        config = c
        block = BlockLayout(c)
        let h = c.hiddenSize
        embedding = 0
        blocksStart = c.vocabSize * h
        finalNorm = blocksStart + c.numHiddenLayers * block.count
        head = c.tieWordEmbeddings ? embedding : finalNorm + h
        count = c.tieWordEmbeddings ? finalNorm + h : finalNorm + h + c.vocabSize * h
        let qw = c.numAttentionHeads * c.headDim
        let kvw = c.numKeyValueHeads * c.headDim
        let f = c.intermediateSize
        var list = [
            ParameterTensor(name: "model.embed_tokens.weight", shape: [c.vocabSize, h], offset: 0, decay: true)
        ]
        for i in 0..<c.numHiddenLayers {
            let base = blocksStart + i * block.count
            let p = "model.layers.\(i)."
            list.append(
                .init(name: p + "input_layernorm.weight", shape: [h], offset: base + block.inputNorm, decay: false))
            list.append(
                .init(name: p + "self_attn.q_proj.weight", shape: [qw, h], offset: base + block.q, decay: true))
            list.append(
                .init(name: p + "self_attn.k_proj.weight", shape: [kvw, h], offset: base + block.k, decay: true))
            list.append(
                .init(name: p + "self_attn.v_proj.weight", shape: [kvw, h], offset: base + block.v, decay: true))
            list.append(
                .init(name: p + "self_attn.o_proj.weight", shape: [h, qw], offset: base + block.o, decay: true))
            if let post = block.postNorm {
                list.append(
                    .init(name: p + "post_attention_layernorm.weight", shape: [h], offset: base + post, decay: false))
            }
            list.append(.init(name: p + "mlp.gate_proj.weight", shape: [f, h], offset: base + block.gate, decay: true))
            list.append(.init(name: p + "mlp.up_proj.weight", shape: [f, h], offset: base + block.up, decay: true))
            list.append(.init(name: p + "mlp.down_proj.weight", shape: [h, f], offset: base + block.down, decay: true))
        }
        list.append(.init(name: "model.norm.weight", shape: [h], offset: finalNorm, decay: false))
        if !c.tieWordEmbeddings {
            list.append(.init(name: "lm_head.weight", shape: [c.vocabSize, h], offset: head, decay: true))
        }
        tensors = list
    }

    /// Offset of block `i`.
    public func blockStart(_ i: Int) -> Int { blocksStart + i * block.count }

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
