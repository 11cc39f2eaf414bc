/// Named model shapes: LLM-jp-3's published sizes (the 8×13B mixture of experts too) and small
/// shapes for tests and benchmarks (`tiny-moe` and `small-moe` route each token to two experts of
/// half the dense shape's MLP width: the same active parameters, plus the router).
public enum ModelPreset {
    /// LLM-jp-3's vocabulary: 99,574 sentencepiece pieces padded to a multiple of 128.
    public static let llmJPVocab = 99_584

    /// The names `model.preset` accepts, smallest first.
    public static let names = [
        "tiny", "tiny-moe", "small", "small-moe", "150m", "440m", "980m", "1.8b", "3.7b", "7.2b", "13b", "172b",
        "8x13b",
    ]

    /// The configuration of a preset, or nil for an unknown name.
    public static func config(_ name: String) -> ModelConfig? {
        func llmjp(_ layers: Int, _ hidden: Int, _ ffn: Int, _ heads: Int, _ kv: Int) -> ModelConfig {
            ModelConfig(
                vocabSize: llmJPVocab, hiddenSize: hidden, intermediateSize: ffn, numHiddenLayers: layers,
                numAttentionHeads: heads, numKeyValueHeads: kv, maxPositionEmbeddings: 4096, ropeTheta: 10000,
                rmsNormEps: 1e-5)
        }
        /// `dense` with its MLP replaced by `experts` experts, each token routed to two; each expert as wide
        /// as `ffn` (Megatron's and ST-MoE's load-balancing coefficient, 0.01, in the loss).
        func mixture(_ dense: ModelConfig, experts: Int, ffn: Int) -> ModelConfig {
            var c = dense
            c.intermediateSize = ffn
            c.numLocalExperts = experts
            c.numExpertsPerTok = 2
            c.routerAuxLossCoef = 0.01
            c.outputRouterLogits = true
            return c
        }
        switch name.lowercased() {
        case "tiny-moe": return mixture(config("tiny")!, experts: 8, ffn: 352)
        case "small-moe": return mixture(config("small")!, experts: 8, ffn: 704)
        case "8x13b": return mixture(llmjp(40, 5120, 13824, 40, 40), experts: 8, ffn: 13824)
        case "tiny":
            return ModelConfig(
                vocabSize: 4096, hiddenSize: 256, intermediateSize: 704, numHiddenLayers: 4, numAttentionHeads: 4,
                numKeyValueHeads: 2, maxPositionEmbeddings: 1024)
        case "small":
            return ModelConfig(
                vocabSize: 32000, hiddenSize: 512, intermediateSize: 1408, numHiddenLayers: 8, numAttentionHeads: 8,
                numKeyValueHeads: 4, maxPositionEmbeddings: 2048)
        case "150m": return llmjp(12, 512, 2048, 8, 8)
        case "440m": return llmjp(16, 1024, 3584, 16, 16)
        case "980m": return llmjp(20, 1536, 5376, 16, 16)
        case "1.8b": return llmjp(24, 2048, 7168, 16, 16)
        case "3.7b": return llmjp(28, 3072, 8192, 24, 24)
        case "7.2b": return llmjp(32, 4096, 11008, 32, 32)
        case "13b": return llmjp(40, 5120, 13824, 40, 40)
        case "172b": return llmjp(96, 12288, 38464, 96, 16)
        default: return nil
        }
    }
}
