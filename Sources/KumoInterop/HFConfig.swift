import Foundation
import KumoModel

/// Reads and writes Hugging Face `config.json` for `LlamaForCausalLM`.
public enum HFConfig {
    /// The longest context Kumo accepts from a file: bounds the RoPE table a hostile file could ask for.
    public static let maxPositions = 1 << 20
    /// The largest vocabulary, hidden or intermediate size accepted from a file.
    public static let maxDimension = 1 << 20
    /// The most layers accepted from a file.
    public static let maxLayers = 1024

    /// Parses `config.json` bytes into a validated `ModelConfig`; `path` names the file in errors.
    public static func parse(_ data: Data, path: String) throws -> ModelConfig {
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw InteropError(path, "is not a JSON object")
        }
        if let type = json["model_type"] as? String, type != "llama" {
            throw InteropError(path, "model_type \"\(type)\" is not supported; Kumo reads \"llama\"")
        }
        if let architectures = json["architectures"] as? [String], !architectures.contains("LlamaForCausalLM") {
            throw InteropError(path, "architectures \(architectures) do not include LlamaForCausalLM")
        }
        try refuseUnsupported(json, path: path)
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let raw = json[key], !(raw is NSNull) else {
                if let value { return value }
                throw InteropError(path, "lacks \(key)")
            }
            guard let n = raw as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 0x1p40
            else { throw InteropError(path, "\(key) must be an integer, got \(raw)") }
            return n.intValue
        }
        func double(_ key: String, default value: Double) throws -> Double {
            guard let raw = json[key], !(raw is NSNull) else { return value }
            guard let n = raw as? NSNumber else {
                throw InteropError(path, "\(key) must be a number, got \(raw)")
            }
            return n.doubleValue
        }
        let heads = try int("num_attention_heads")
        var tied = false
        if let raw = json["tie_word_embeddings"] {
            guard let b = raw as? Bool else { throw InteropError(path, "tie_word_embeddings must be true or false") }
            tied = b
        }
        let config = ModelConfig(
            vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
            intermediateSize: try int("intermediate_size"), numHiddenLayers: try int("num_hidden_layers"),
            numAttentionHeads: heads, numKeyValueHeads: try int("num_key_value_heads", default: heads),
            maxPositionEmbeddings: try int("max_position_embeddings", default: 2048),
            ropeTheta: try ropeTheta(json, path: path), rmsNormEps: try double("rms_norm_eps", default: 1e-6),
            tieWordEmbeddings: tied)
        try validate(config, path: path)
        if let headDim = json["head_dim"], !(headDim is NSNull), try int("head_dim") != config.headDim {
            throw InteropError(
                path, "head_dim \(headDim) differs from hidden_size / num_attention_heads; Kumo needs them equal")
        }
        return config
    }

    /// `rope_theta`, at the top level or inside transformers 5's `rope_parameters`.
    private static func ropeTheta(_ json: [String: Any], path: String) throws -> Double {
        let raw = json["rope_theta"] ?? (json["rope_parameters"] as? [String: Any])?["rope_theta"]
        guard let raw, !(raw is NSNull) else { return 10000 }
        guard let n = raw as? NSNumber else { throw InteropError(path, "rope_theta must be a number, got \(raw)") }
        return n.doubleValue
    }

    /// Features of LlamaForCausalLM that Kumo's model does not have.
    private static func refuseUnsupported(_ json: [String: Any], path: String) throws {
        // transformers 5 writes rope_parameters; older versions rope_scaling (null for plain RoPE).
        for key in ["rope_scaling", "rope_parameters"] {
            guard let value = json[key], !(value is NSNull) else { continue }
            let type = (value as? [String: Any]).flatMap { $0["rope_type"] ?? $0["type"] } as? String
            if type != "default" {
                throw InteropError(path, "\(key) \(value) is not supported: Kumo implements plain RoPE (default)")
            }
        }
        for key in ["attention_bias", "mlp_bias"] where (json[key] as? Bool) == true {
            throw InteropError(path, "\(key) = true is not supported: Kumo's projections have no bias")
        }
        if let act = json["hidden_act"] as? String, act != "silu" {
            throw InteropError(path, "hidden_act \"\(act)\" is not supported; Kumo's MLP is SwiGLU (silu)")
        }
    }

    /// Checks the shape, and bounds the sizes so that a hostile file cannot make Kumo overflow
    /// an offset or allocate an unbounded RoPE table before its tensors are checked.
    static func validate(_ config: ModelConfig, path: String) throws {
        do {
            try config.validate()
        } catch {
            throw InteropError(path, error.description)
        }
        let dims = [
            ("vocab_size", config.vocabSize), ("hidden_size", config.hiddenSize),
            ("intermediate_size", config.intermediateSize),
        ]
        for (key, value) in dims where value > maxDimension {
            throw InteropError(path, "\(key) \(value) exceeds \(maxDimension)")
        }
        guard config.numHiddenLayers <= maxLayers else {
            throw InteropError(path, "num_hidden_layers \(config.numHiddenLayers) exceeds \(maxLayers)")
        }
        guard config.maxPositionEmbeddings <= maxPositions else {
            throw InteropError(path, "max_position_embeddings \(config.maxPositionEmbeddings) exceeds \(maxPositions)")
        }
    }

    /// Reads `config.json` at `path`.
    public static func read(path: String) throws -> ModelConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw InteropError(path, "cannot be read") }
        return try parse(data, path: path)
    }

    /// `config.json` for `config` as LlamaForCausalLM in float32; refuses parallel-layer models,
    /// which that class cannot express.
    public static func json(_ config: ModelConfig, bosTokenId: Int32? = nil, eosTokenId: Int32? = nil) throws -> Data {
        guard !config.parallelLayers else {
            throw InteropError(
                "config.json",
                "parallel_layers = true (one shared norm, attention and MLP in parallel) cannot be expressed as "
                    + "LlamaForCausalLM; convert to --format kumo instead")
        }
        var object: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
            "hidden_size": config.hiddenSize, "intermediate_size": config.intermediateSize,
            "num_hidden_layers": config.numHiddenLayers, "num_attention_heads": config.numAttentionHeads,
            "num_key_value_heads": config.numKeyValueHeads, "head_dim": config.headDim,
            "rms_norm_eps": config.rmsNormEps, "rope_theta": config.ropeTheta, "vocab_size": config.vocabSize,
            "tie_word_embeddings": config.tieWordEmbeddings,
            "max_position_embeddings": config.maxPositionEmbeddings, "torch_dtype": "float32",
            "attention_bias": false, "mlp_bias": false, "rope_scaling": NSNull(),
        ]
        if let bosTokenId { object["bos_token_id"] = Int(bosTokenId) }
        if let eosTokenId { object["eos_token_id"] = Int(eosTokenId) }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
