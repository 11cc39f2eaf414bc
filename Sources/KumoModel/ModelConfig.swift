/// Shape of a LLaMA-family decoder, with Hugging Face's `config.json` field names.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var maxPositionEmbeddings: Int
    public var ropeTheta: Double
    public var rmsNormEps: Double
    public var tieWordEmbeddings: Bool
    /// GPT-J/PLaMo block y = x + Attn(Norm(x)) + MLP(Norm(x)) with one shared norm.
    public var parallelLayers: Bool
    /// Mixtral: experts in each block's feed-forward (0: a dense SwiGLU MLP).
    public var numLocalExperts: Int
    /// Mixtral: experts each token is routed to (top-k).
    public var numExpertsPerTok: Int
    /// Mixtral: weight of the Switch load-balancing loss.
    public var routerAuxLossCoef: Double
    /// Weight of the router z-loss (ST-MoE), mean over tokens of logsumexp(router logits)²; 0: off.
    public var routerZLossCoef: Double
    /// Mixtral: whether the load-balancing loss enters the loss (Hugging Face adds it only then).
    public var outputRouterLogits: Bool

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case maxPositionEmbeddings = "max_position_embeddings"
        case ropeTheta = "rope_theta"
        case rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings"
        case parallelLayers = "parallel_layers"
        case numLocalExperts = "num_local_experts"
        case numExpertsPerTok = "num_experts_per_tok"
        case routerAuxLossCoef = "router_aux_loss_coef"
        case routerZLossCoef = "router_z_loss_coef"
        case outputRouterLogits = "output_router_logits"
    }

    /// Creates a configuration; defaults follow LLaMA's.
    public init(
        vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
        numAttentionHeads: Int, numKeyValueHeads: Int? = nil, maxPositionEmbeddings: Int = 4096,
        ropeTheta: Double = 10000, rmsNormEps: Double = 1e-5, tieWordEmbeddings: Bool = false,
        parallelLayers: Bool = false, numLocalExperts: Int = 0, numExpertsPerTok: Int = 2,
        routerAuxLossCoef: Double = 0.001, routerZLossCoef: Double = 0, outputRouterLogits: Bool = false
    ) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.ropeTheta = ropeTheta
        self.rmsNormEps = rmsNormEps
        self.tieWordEmbeddings = tieWordEmbeddings
        self.parallelLayers = parallelLayers
        self.numLocalExperts = numLocalExperts
        self.numExpertsPerTok = numExpertsPerTok
        self.routerAuxLossCoef = routerAuxLossCoef
        self.routerZLossCoef = routerZLossCoef
        self.outputRouterLogits = outputRouterLogits
    }

    /// Reads a configuration written by an earlier Kumo (no expert fields: dense).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vocabSize: try c.decode(Int.self, forKey: .vocabSize),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
            numHiddenLayers: try c.decode(Int.self, forKey: .numHiddenLayers),
            numAttentionHeads: try c.decode(Int.self, forKey: .numAttentionHeads),
            numKeyValueHeads: try c.decode(Int.self, forKey: .numKeyValueHeads),
            maxPositionEmbeddings: try c.decode(Int.self, forKey: .maxPositionEmbeddings),
            ropeTheta: try c.decode(Double.self, forKey: .ropeTheta),
            rmsNormEps: try c.decode(Double.self, forKey: .rmsNormEps),
            tieWordEmbeddings: try c.decode(Bool.self, forKey: .tieWordEmbeddings),
            parallelLayers: try c.decode(Bool.self, forKey: .parallelLayers),
            numLocalExperts: try c.decodeIfPresent(Int.self, forKey: .numLocalExperts) ?? 0,
            numExpertsPerTok: try c.decodeIfPresent(Int.self, forKey: .numExpertsPerTok) ?? 2,
            routerAuxLossCoef: try c.decodeIfPresent(Double.self, forKey: .routerAuxLossCoef) ?? 0.001,
            routerZLossCoef: try c.decodeIfPresent(Double.self, forKey: .routerZLossCoef) ?? 0,
            outputRouterLogits: try c.decodeIfPresent(Bool.self, forKey: .outputRouterLogits) ?? false)
    }

    /// Whether the feed-forward is a mixture of experts.
    public var isMoE: Bool { numLocalExperts > 0 }

    /// Feed-forward networks each token runs through: its top-k experts, or the one dense MLP.
    public var activeExperts: Int { isMoE ? numExpertsPerTok : 1 }

    /// Size of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// Checks that the shape is buildable; the error names the field and what would be valid.
    public func validate() throws(ModelConfigError) {
        func positive(_ value: Int, _ key: String) throws(ModelConfigError) {
            if value <= 0 { throw ModelConfigError(key: key, message: "must be a positive integer, got \(value)") }
        }
        try positive(vocabSize, "vocab_size")
        try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size")
        try positive(numHiddenLayers, "num_hidden_layers")
        try positive(numAttentionHeads, "num_attention_heads")
        try positive(numKeyValueHeads, "num_key_value_heads")
        try positive(maxPositionEmbeddings, "max_position_embeddings")
        if hiddenSize % numAttentionHeads != 0 {
            throw ModelConfigError(
                key: "num_attention_heads",
                message: "must divide hidden_size (\(hiddenSize)); got \(numAttentionHeads)")
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw ModelConfigError(
                key: "num_key_value_heads",
                message: "must divide num_attention_heads (\(numAttentionHeads)); got \(numKeyValueHeads)")
        }
        if headDim % 2 != 0 {
            throw ModelConfigError(
                key: "num_attention_heads", message: "head dimension \(headDim) must be even for RoPE")
        }
        if numLocalExperts < 0 {
            throw ModelConfigError(
                key: "num_local_experts", message: "must be 0 (dense) or positive, got \(numLocalExperts)")
        }
        if isMoE && !(1...numLocalExperts).contains(numExpertsPerTok) {
            throw ModelConfigError(
                key: "num_experts_per_tok",
                message: "must be between 1 and num_local_experts (\(numLocalExperts)); got \(numExpertsPerTok)")
        }
        if !(routerAuxLossCoef >= 0) || !(routerZLossCoef >= 0) {
            throw ModelConfigError(
                key: routerAuxLossCoef >= 0 ? "router_z_loss_coef" : "router_aux_loss_coef",
                message: "must be 0 or positive")
        }
        if !(ropeTheta > 0) { throw ModelConfigError(key: "rope_theta", message: "must be positive, got \(ropeTheta)") }
        if !(rmsNormEps > 0) {
            throw ModelConfigError(key: "rms_norm_eps", message: "must be positive, got \(rmsNormEps)")
        }
    }

    /// Parameters in matrix multiplications a token passes through (all projections and the output
    /// head, not the input embedding; of a mixture of experts the router and the top-k experts): the
    /// N of the 6·N FLOPs-per-token rule.
    public var matmulParameterCount: Int {
        let h = hiddenSize
        let attn = h * headDim * (2 * numAttentionHeads + 2 * numKeyValueHeads)
        let mlp = activeExperts * 3 * h * intermediateSize + numLocalExperts * h
        return numHiddenLayers * (attn + mlp) + vocabSize * h
    }

    /// "2 layers, hidden 32, 4 heads (2 KV), FFN 24 × 4 experts (top 2), vocab 260": the shape in one line.
    public var shapeSummary: String {
        "\(numHiddenLayers) layers, hidden \(hiddenSize), \(numAttentionHeads) heads (\(numKeyValueHeads) KV), "
            + "FFN \(intermediateSize)" + (isMoE ? " × \(numLocalExperts) experts (top \(numExpertsPerTok))" : "")
            + ", vocab \(vocabSize)"
    }

    /// Model FLOPs of one trained token (forward and backward) at sequence length `seqLen`:
    /// 6·N + 12·L·h·s.
    public func flopsPerToken(seqLen: Int) -> Double {
        6 * Double(matmulParameterCount) + 12 * Double(numHiddenLayers * hiddenSize * seqLen)
    }
}

/// A configuration field with an invalid value.
public struct ModelConfigError: Error, CustomStringConvertible, Equatable {
    /// The Hugging Face field name.
    public var key: String
    /// What is wrong and what would be valid.
    public var message: String
    public var description: String { "model.\(key): \(message)" }
}
