import Foundation
import KumoModel

/// Maps a GGUF file of the `llama` architecture onto Kumo's model, dequantizing every tensor.
///
/// llama.cpp's converter reorders the rows of each Q and K head from Hugging Face's layout
/// (the two halves of the head are the rotated pairs) to adjacent pairs (row 2j, 2j+1): GGUF
/// row h·d + 2j + s holds Hugging Face row h·d + s·d/2 + j. Loading undoes that permutation.
public enum GGUFLlama {
    /// Kumo's configuration from the `llama.*` metadata and the tensor shapes.
    public static func config(_ file: GGUFFile) throws -> ModelConfig {
        let path = file.path
        guard case .string(let arch) = file.metadata["general.architecture"] else {
            throw InteropError(path, "lacks general.architecture")
        }
        guard arch == "llama" else {
            throw InteropError(path, "architecture \"\(arch)\" is not supported; Kumo reads \"llama\"")
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["llama." + key] else { throw InteropError(path, "lacks llama.\(key)") }
            guard let n = v.int else { throw InteropError(path, "llama.\(key) must be an integer, got \(v)") }
            return n
        }
        func double(_ key: String, default value: Double) throws -> Double {
            guard let v = file.metadata["llama." + key] else { return value }
            guard let n = v.double else { throw InteropError(path, "llama.\(key) must be a number, got \(v)") }
            return n
        }
        if let experts = file.metadata["llama.expert_count"], experts.int != 0 {
            throw InteropError(
                path,
                "llama.expert_count \(experts.int.map { "\($0)" } ?? "\(experts)"): Kumo does not read mixture-of-experts GGUF files; convert the "
                    + "Hugging Face (Mixtral) directory instead")
        }
        if file.metadata["llama.rope.scaling.type"] != nil || file.metadata["llama.rope.scaling.factor"] != nil {
            throw InteropError(path, "llama.rope.scaling is not supported (Kumo implements plain RoPE)")
        }
        guard let embedding = file.tensors["token_embd.weight"], embedding.dims.count == 2 else {
            throw InteropError(path, "lacks a two-dimensional token_embd.weight")
        }
        let heads = try int("attention.head_count")
        let config = ModelConfig(
            vocabSize: embedding.dims[1], hiddenSize: try int("embedding_length"),
            intermediateSize: try int("feed_forward_length"), numHiddenLayers: try int("block_count"),
            numAttentionHeads: heads,
            numKeyValueHeads: file.metadata["llama.attention.head_count_kv"] == nil
                ? heads : try int("attention.head_count_kv"),
            maxPositionEmbeddings: try int("context_length"),
            ropeTheta: try double("rope.freq_base", default: 10000),
            rmsNormEps: try double("attention.layer_norm_rms_epsilon", default: 1e-5),
            tieWordEmbeddings: file.tensors["output.weight"] == nil)
        try HFConfig.validate(config, path: path)
        if file.metadata["llama.rope.dimension_count"] != nil, try int("rope.dimension_count") != config.headDim {
            throw InteropError(path, "llama.rope.dimension_count differs from the head size \(config.headDim)")
        }
        return config
    }

    /// The GGUF tensor name of each Kumo (Hugging Face) parameter name.
    static func ggufName(_ name: String) -> String {
        let fixed = [
            "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight",
        ]
        if let n = fixed[name] { return n }
        let parts = name.split(separator: ".")  // model.layers.N.<module>.<proj>.weight
        let module = parts.dropFirst(3).dropLast().joined(separator: ".")
        let blockNames = [
            "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
            "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
            "mlp.down_proj": "ffn_down",
        ]
        return "blk.\(parts[2]).\(blockNames[module]!).weight"
    }

    /// Loads the model in `file`, dequantized to fp32.
    public static func load(_ file: GGUFFile) throws -> LlamaModel {
        let config = try config(file)
        let layout = ParameterLayout(config)
        for t in layout.tensors {
            let name = ggufName(t.name)
            guard let info = file.tensors[name] else { throw InteropError(file.path, "lacks tensor \(name)") }
            guard info.dims == Array(t.shape.reversed()) else {
                throw InteropError(
                    file.path,
                    "tensor \(name) has ggml shape \(info.dims); the llama metadata implies \(Array(t.shape.reversed()))"
                )
            }
        }
        let model = try LlamaModel(inferenceOf: config)
        for t in layout.tensors {
            var values = try file.floats(ggufName(t.name))
            if t.name.hasSuffix("q_proj.weight") || t.name.hasSuffix("k_proj.weight") {
                values = reorderRotaryRows(
                    values, rows: t.shape[0], columns: t.shape[1], headDim: config.headDim, toAdjacentPairs: false)
            }
            (model.params.pointer + t.offset).update(from: values, count: t.count)
        }
        return model
    }

    /// Reorders the rows of each rotary head between Hugging Face's halves and llama.cpp's
    /// adjacent pairs: Hugging Face row s·d/2 + j is llama.cpp row 2j + s.
    static func reorderRotaryRows(
        _ w: [Float], rows: Int, columns: Int, headDim: Int, toAdjacentPairs: Bool
    ) -> [Float] {
        var out = [Float](repeating: 0, count: w.count)
        let half = headDim / 2
        for head in 0..<(rows / headDim) {
            for j in 0..<half {
                for s in 0..<2 {
                    let halves = (head * headDim + s * half + j) * columns
                    let pairs = (head * headDim + 2 * j + s) * columns
                    let (from, to) = toAdjacentPairs ? (halves, pairs) : (pairs, halves)
                    out[to..<(to + columns)] = w[from..<(from + columns)]
                }
            }
        }
        return out
    }
}
