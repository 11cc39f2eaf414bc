/// The part of the whole model one rank holds under tensor and pipeline parallelism: a run of
/// consecutive blocks (a pipeline stage), the embedding if it is the first stage, the final norm
/// and output head if it is the last, and of each of them its tensor-parallel slice. Attention is
/// split by heads, the MLP by intermediate columns, the embedding and head by vocabulary rows;
/// norm weights are whole on every tensor rank. When tensor ranks outnumber the key/value heads,
/// each rank holds one key/value head and `kvReplicas` consecutive ranks hold the same one.
public struct ModelShard: Sendable, Equatable {
    /// This rank's index in its tensor-parallel group.
    public var tensorRank: Int
    /// Ranks in the tensor-parallel group.
    public var tensorSize: Int
    /// The global indices of the blocks this rank holds.
    public var layers: Range<Int>
    /// Whether this rank holds the token embedding (the first pipeline stage).
    public var hasEmbedding: Bool
    /// Whether this rank holds the final norm and the output head (the last pipeline stage).
    public var hasHead: Bool
    /// This rank's index in its expert-parallel group (which splits a mixture's experts).
    public var expertRank: Int
    /// Ranks in the expert-parallel group.
    public var expertSize: Int

    /// A shard: `tensorRank` of `tensorSize`, `expertRank` of `expertSize`, the given blocks, embedding and head.
    public init(
        tensorRank: Int = 0, tensorSize: Int = 1, expertRank: Int = 0, expertSize: Int = 1, layers: Range<Int>,
        hasEmbedding: Bool, hasHead: Bool
    ) {
        self.tensorRank = tensorRank
        self.tensorSize = tensorSize
        self.expertRank = expertRank
        self.expertSize = expertSize
        self.layers = layers
        self.hasEmbedding = hasEmbedding
        self.hasHead = hasHead
    }

    /// The whole model on one rank.
    public static func whole(_ c: ModelConfig) -> ModelShard {
        ModelShard(layers: 0..<c.numHiddenLayers, hasEmbedding: true, hasHead: true)
    }

    /// Whether this is the whole model.
    public func isWhole(_ c: ModelConfig) -> Bool { self == .whole(c) }

    /// Checks that `c` splits this way; the error names the field and what would divide.
    public func validate(_ c: ModelConfig) throws(ModelConfigError) {
        let t = tensorSize
        precondition(t >= 1 && (0..<t).contains(tensorRank), "tensor rank \(tensorRank) outside 0..<\(t)")
        guard layers.lowerBound >= 0, layers.upperBound <= c.numHiddenLayers, !layers.isEmpty else {
            throw ModelConfigError(
                key: "num_hidden_layers",
                message: "blocks \(layers) are not a non-empty part of 0..<\(c.numHiddenLayers)")
        }
        let divisible: [(String, Int)] = [
            ("num_attention_heads", c.numAttentionHeads), ("intermediate_size", c.intermediateSize),
            ("vocab_size", c.vocabSize),
        ]
        for (key, value) in divisible where value % t != 0 {
            throw ModelConfigError(
                key: key,
                message: "\(value) is not divisible by parallel.tensor = \(t); use a tensor size that divides it")
        }
        if c.numKeyValueHeads % t != 0 && t % c.numKeyValueHeads != 0 {
            throw ModelConfigError(
                key: "num_key_value_heads",
                message:
                    "\(c.numKeyValueHeads) key/value heads can be neither split nor replicated over parallel.tensor = \(t): "
                    + "one must divide the other")
        }
        precondition(expertSize >= 1 && (0..<expertSize).contains(expertRank), "expert rank outside the group")
        if expertSize > 1 && c.numLocalExperts % expertSize != 0 {
            throw ModelConfigError(
                key: "num_local_experts",
                message:
                    "\(c.numLocalExperts) experts do not split over parallel.expert = \(expertSize); use an expert size that divides it"
            )
        }
        if c.isMoE && layers != 0..<c.numHiddenLayers {
            throw ModelConfigError(
                key: "num_local_experts",
                message:
                    "a mixture of experts does not split over pipeline stages yet (its load-balancing loss spans all layers); use parallel.pipeline = 1"
            )
        }
        if c.isMoE && t > 1 {
            throw ModelConfigError(
                key: "num_local_experts",
                message:
                    "a mixture of experts does not split over parallel.tensor = \(t) yet; use parallel.expert instead")
        }
        if c.tieWordEmbeddings && hasEmbedding != hasHead {
            throw ModelConfigError(
                key: "tie_word_embeddings",
                message:
                    "a tied embedding must sit on one pipeline stage with the head; untie it or use parallel.pipeline = 1"
            )
        }
    }

    /// Query heads on this rank.
    public func heads(_ c: ModelConfig) -> Int { c.numAttentionHeads / tensorSize }
    /// Key/value heads on this rank.
    public func kvHeads(_ c: ModelConfig) -> Int { max(1, c.numKeyValueHeads / tensorSize) }
    /// Tensor ranks that hold the same key/value heads (1 when they are split, not replicated).
    public func kvReplicas(_ c: ModelConfig) -> Int { max(1, tensorSize / c.numKeyValueHeads) }
    /// The first (global) key/value head on this rank.
    public func firstKVHead(_ c: ModelConfig) -> Int { tensorRank / kvReplicas(c) * kvHeads(c) }
    /// Intermediate (MLP) columns on this rank.
    public func intermediate(_ c: ModelConfig) -> Int { c.intermediateSize / tensorSize }
    /// Experts of each mixture on this rank (1 for a dense MLP, which is whole on every expert rank).
    public func experts(_ c: ModelConfig) -> Int { c.isMoE ? c.numLocalExperts / expertSize : 1 }
    /// The first (global) expert on this rank.
    public func firstExpert(_ c: ModelConfig) -> Int { c.isMoE ? expertRank * experts(c) : 0 }
    /// Vocabulary rows of the embedding and head on this rank.
    public func vocab(_ c: ModelConfig) -> Int { c.vocabSize / tensorSize }
    /// The first (global) vocabulary row on this rank.
    public func vocabStart(_ c: ModelConfig) -> Int { tensorRank * vocab(c) }
}

/// Where a rank's piece of a tensor lies in the whole tensor: `count` of the `total` indices of
/// dimension `dim`, from `start`.
public struct TensorSlice: Sendable, Equatable {
    public var dim: Int
    public var start: Int
    public var count: Int
    public var total: Int
}
