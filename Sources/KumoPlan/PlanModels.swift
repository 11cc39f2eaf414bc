import KumoModel

/// Model shapes the planner knows beyond `model.preset`'s: the seeds' published models, as LLaMA
/// decoders of the same size (a GELU MLP of 4h becomes a SwiGLU MLP of 8h/3, the same parameters).
public enum PlanModels {
    static func shape(
        layers: Int, hidden: Int, ffn: Int, heads: Int, kv: Int, vocab: Int, positions: Int, parallel: Bool = false
    ) -> ModelConfig {
        var c = ModelConfig(
            vocabSize: vocab, hiddenSize: hidden, intermediateSize: ffn, numHiddenLayers: layers,
            numAttentionHeads: heads,
            numKeyValueHeads: kv, maxPositionEmbeddings: positions)
        c.parallelLayers = parallel
        return c
    }

    /// The names beside `ModelPreset.names`.
    public static let names = [
        "gpt3-175b", "frontier-22b", "frontier-175b", "frontier-1t", "plamo-13b", "fugaku-llm-13b",
    ]

    /// A preset (`ModelPreset`) or one of `names`.
    public static func config(_ name: String) -> ModelConfig? {
        switch name.lowercased() {
        // Brown et al. 2020: 96 layers of 12,288, 96 heads, 2,048 tokens.
        case "gpt3-175b", "frontier-175b":
            return shape(layers: 96, hidden: 12288, ffn: 32768, heads: 96, kv: 96, vocab: 50304, positions: 2048)
        // Dash et al. 2023 (Frontier): 22B of 48 layers of 6,144 and 1T of 128 layers of 25,600.
        case "frontier-22b":
            return shape(layers: 48, hidden: 6144, ffn: 16384, heads: 48, kv: 48, vocab: 51200, positions: 2048)
        case "frontier-1t":
            return shape(layers: 128, hidden: 25600, ffn: 68352, heads: 160, kv: 160, vocab: 51200, positions: 2048)
        // PLaMo-13B: LLaMA with parallel attention and MLP, 40 layers of 5,120, 4,096 tokens.
        case "plamo-13b":
            return shape(
                layers: 40, hidden: 5120, ffn: 13824, heads: 40, kv: 40, vocab: 50432, positions: 4096, parallel: true)
        // Fugaku-LLM 13B: 40 layers of 5,120, 2,048 tokens.
        case "fugaku-llm-13b":
            return shape(layers: 40, hidden: 5120, ffn: 13824, heads: 40, kv: 40, vocab: 50688, positions: 2048)
        default: return ModelPreset.config(name)
        }
    }
}
