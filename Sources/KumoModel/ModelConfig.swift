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
    }

    /// Creates a configuration; defaults follow LLaMA's.
    public init(
        vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
        numAttentionHeads: Int, numKeyValueHeads: Int? = nil, maxPositionEmbeddings: Int = 4096,
        ropeTheta: Double = 10000, rmsNormEps: Double = 1e-5, tieWordEmbeddings: Bool = false,
        parallelLayers: Bool = false
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
    }

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
        if !(ropeTheta > 0) { throw ModelConfigError(key: "rope_theta", message: "must be positive, got \(ropeTheta)") }
        if !(rmsNormEps > 0) {
            throw ModelConfigError(key: "rms_norm_eps", message: "must be positive, got \(rmsNormEps)")
        }
    }

    /// Parameters in matrix multiplications (all projections and the output head, not the
    /// input embedding): the N of the 6·N FLOPs-per-token rule.
    public var matmulParameterCount: Int {
        let h = hiddenSize
        let attn = h * headDim * (2 * numAttentionHeads + 2 * numKeyValueHeads)
        let mlp = 3 * h * intermediateSize
        return numHiddenLayers * (attn + mlp) + vocabSize * h
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
