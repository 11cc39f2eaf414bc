import Foundation
import KumoModel

/// Reads and writes Hugging Face `config.json` for `LlamaForCausalLM` and `MixtralForCausalLM`.
public enum HFConfig {
    /// The longest context Kumo accepts from a file: bounds the RoPE table a hostile file could ask for.
    public static let maxPositions = 1 << 20
    /// The largest vocabulary, hidden or intermediate size accepted from a file.
    public static let maxDimension = 1 << 20
    /// The most layers accepted from a file.
    public static let maxLayers = 1024
    /// The most experts per mixture layer accepted from a file.
    public static let maxExperts = 1024
    /// The most experts over all layers accepted from a file (bounds the tensors a config implies).
    public static let maxExpertsInModel = 1 << 16
    /// The most parameters accepted from a file: keeps every offset far from overflowing.
    public static let maxParameters = 1 << 48

    /// The model classes Kumo reads and writes, with transformers' defaults for absent keys.
    enum Architecture: String {
        case llama, mixtral

        var className: String { self == .llama ? "LlamaForCausalLM" : "MixtralForCausalLM" }
        var defaultRopeTheta: Double { self == .llama ? 10000 : 1e6 }
        var defaultMaxPositions: Int { self == .llama ? 2048 : 131072 }
        var defaultRMSNormEps: Double { self == .llama ? 1e-6 : 1e-5 }
    }

    /// Parses `config.json` bytes into a validated `ModelConfig`; `path` names the file in errors.
    public static func parse(_ data: Data, path: String) throws -> ModelConfig {
        let json = try ConfigJSON(data, path: path)
        let arch = try architecture(json)
        try refuseUnsupported(json, arch)
        let heads = try json.int("num_attention_heads")
        var config = ModelConfig(
            vocabSize: try json.int("vocab_size"), hiddenSize: try json.int("hidden_size"),
            intermediateSize: try json.int("intermediate_size"), numHiddenLayers: try json.int("num_hidden_layers"),
            numAttentionHeads: heads, numKeyValueHeads: try json.int("num_key_value_heads", default: heads),
            maxPositionEmbeddings: try json.int("max_position_embeddings", default: arch.defaultMaxPositions),
            ropeTheta: try ropeTheta(json, default: arch.defaultRopeTheta),
            rmsNormEps: try json.double("rms_norm_eps", default: arch.defaultRMSNormEps),
            tieWordEmbeddings: try json.bool("tie_word_embeddings", default: false))
        if arch == .mixtral {
            // transformers' MixtralConfig defaults; router_z_loss_coef is Kumo's own key.
            config.numLocalExperts = try json.int("num_local_experts", default: 8)
            config.numExpertsPerTok = try json.int("num_experts_per_tok", default: 2)
            config.routerAuxLossCoef = try json.double("router_aux_loss_coef", default: 0.001)
            config.routerZLossCoef = try json.double("router_z_loss_coef", default: 0)
            config.outputRouterLogits = try json.bool("output_router_logits", default: false)
            guard config.numLocalExperts >= 1 else {
                throw InteropError(path, "num_local_experts must be at least 1 for MixtralForCausalLM")
            }
        }
        try validate(config, path: path)
        if let headDim = try json.optionalInt("head_dim"), headDim != config.headDim {
            throw InteropError(
                path,
                "head_dim \(headDim) differs from hidden_size / num_attention_heads (\(config.headDim)); "
                    + "Kumo needs them equal")
        }
        if let window = try json.optionalInt("sliding_window"), window < config.maxPositionEmbeddings {
            throw InteropError(
                path,
                "sliding_window \(window) is smaller than max_position_embeddings \(config.maxPositionEmbeddings): "
                    + "Kumo's attention is full causal and would differ past \(window) tokens; set "
                    + "max_position_embeddings to at most \(window) (or sliding_window to null) to run it")
        }
        return config
    }

    /// Settings of the `config.json` bytes that Kumo reads but does not apply, each with why.
    public static func ignoredSettings(_ data: Data) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let jitter = (object["router_jitter_noise"] as? NSNumber)?.doubleValue, jitter != 0
        else { return [] }
        return [
            "router_jitter_noise \(jitter) is ignored: transformers applies it only in training, and Kumo routes "
                + "without jitter (inference is unaffected)"
        ]
    }

    /// The architecture `model_type` and `architectures` name (LLaMA when neither does), if they agree.
    private static func architecture(_ json: ConfigJSON) throws -> Architecture {
        let classes = json.object["architectures"] as? [String]
        let type = json.object["model_type"] as? String
        let arch: Architecture
        if let type {
            guard let known = Architecture(rawValue: type) else {
                throw InteropError(
                    json.path, "model_type \"\(type)\" is not supported; Kumo reads \"llama\" and \"mixtral\"")
            }
            arch = known
        } else {
            arch = classes?.contains(Architecture.mixtral.className) == true ? .mixtral : .llama
        }
        if let classes, !classes.contains(arch.className) {
            throw InteropError(json.path, "architectures \(classes) do not include \(arch.className)")
        }
        return arch
    }

    /// `rope_theta`, at the top level or inside transformers 5's `rope_parameters`.
    private static func ropeTheta(_ json: ConfigJSON, default value: Double) throws -> Double {
        let raw = json.object["rope_theta"] ?? (json.object["rope_parameters"] as? [String: Any])?["rope_theta"]
        guard let raw, !(raw is NSNull) else { return value }
        guard let n = raw as? NSNumber else { throw InteropError(json.path, "rope_theta must be a number, got \(raw)") }
        return n.doubleValue
    }

    /// Features of LlamaForCausalLM and MixtralForCausalLM that Kumo's model does not have.
    private static func refuseUnsupported(_ json: ConfigJSON, _ arch: Architecture) throws {
        let (object, path) = (json.object, json.path)
        // transformers 5 writes rope_parameters; older versions rope_scaling (null for plain RoPE).
        for key in ["rope_scaling", "rope_parameters"] {
            guard let value = object[key], !(value is NSNull) else { continue }
            let type = (value as? [String: Any]).flatMap { $0["rope_type"] ?? $0["type"] } as? String
            if type != "default" {
                throw InteropError(path, "\(key) \(value) is not supported: Kumo implements plain RoPE (default)")
            }
        }
        for key in ["attention_bias", "mlp_bias"] where (object[key] as? Bool) == true {
            throw InteropError(path, "\(key) = true is not supported: Kumo's projections have no bias")
        }
        if let act = object["hidden_act"] as? String, act != "silu" {
            throw InteropError(path, "hidden_act \"\(act)\" is not supported; Kumo's MLP is SwiGLU (silu)")
        }
        if arch == .llama, object["num_local_experts"].map({ !($0 is NSNull) }) == true {
            throw InteropError(
                path, "num_local_experts is set for model_type \"llama\"; a mixture of experts is \"mixtral\"")
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
        let experts = config.numLocalExperts
        guard experts <= maxExperts, config.numHiddenLayers * experts <= maxExpertsInModel else {
            throw InteropError(
                path,
                "num_local_experts \(experts) over \(config.numHiddenLayers) layers exceeds Kumo's limits "
                    + "(\(maxExperts) per layer, \(maxExpertsInModel) in the model)")
        }
        let parameters = parameterCount(config)
        guard parameters <= Double(maxParameters) else {
            throw InteropError(path, "implies \(parameters) parameters, more than Kumo's limit of \(maxParameters)")
        }
    }

    /// Parameters of `config`, in Double so that absurd shapes compare instead of overflowing.
    private static func parameterCount(_ c: ModelConfig) -> Double {
        let (h, f) = (Double(c.hiddenSize), Double(c.intermediateSize))
        let attention = 2 * h * Double(c.headDim) * Double(c.numAttentionHeads + c.numKeyValueHeads)
        let ffn = Double(max(c.numLocalExperts, 1)) * 3 * h * f + Double(c.numLocalExperts) * h
        return Double(c.numHiddenLayers) * (attention + ffn + 2 * h) + 2 * Double(c.vocabSize) * h + h
    }

    /// Reads `config.json` at `path`.
    public static func read(path: String) throws -> ModelConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw InteropError(path, "cannot be read") }
        return try parse(data, path: path)
    }

    /// `config.json` for `config` in float32: LlamaForCausalLM, or MixtralForCausalLM for a mixture
    /// of experts; refuses parallel-layer models, which neither class can express.
    public static func json(_ config: ModelConfig, bosTokenId: Int32? = nil, eosTokenId: Int32? = nil) throws -> Data {
        guard !config.parallelLayers else {
            throw InteropError(
                "config.json",
                "parallel_layers = true (one shared norm, attention and MLP in parallel) cannot be expressed as "
                    + "LlamaForCausalLM; convert to --format kumo instead")
        }
        let arch: Architecture = config.isMoE ? .mixtral : .llama
        var object: [String: Any] = [
            "architectures": [arch.className], "model_type": arch.rawValue, "hidden_act": "silu",
            "hidden_size": config.hiddenSize, "intermediate_size": config.intermediateSize,
            "num_hidden_layers": config.numHiddenLayers, "num_attention_heads": config.numAttentionHeads,
            "num_key_value_heads": config.numKeyValueHeads, "head_dim": config.headDim,
            "rms_norm_eps": config.rmsNormEps, "rope_theta": config.ropeTheta, "vocab_size": config.vocabSize,
            "tie_word_embeddings": config.tieWordEmbeddings,
            "max_position_embeddings": config.maxPositionEmbeddings, "torch_dtype": "float32",
        ]
        if config.isMoE {
            let moe: [String: Any] = [
                "num_local_experts": config.numLocalExperts, "num_experts_per_tok": config.numExpertsPerTok,
                "router_aux_loss_coef": config.routerAuxLossCoef, "router_z_loss_coef": config.routerZLossCoef,
                "output_router_logits": config.outputRouterLogits, "sliding_window": NSNull(),
                "rope_parameters": ["rope_type": "default", "rope_theta": config.ropeTheta],
            ]
            object.merge(moe) { $1 }
        } else {
            object.merge(["attention_bias": false, "mlp_bias": false, "rope_scaling": NSNull()]) { $1 }
        }
        if let bosTokenId { object["bos_token_id"] = Int(bosTokenId) }
        if let eosTokenId { object["eos_token_id"] = Int(eosTokenId) }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return floatLiterals(data, keys: ["rms_norm_eps", "rope_theta", "router_aux_loss_coef", "router_z_loss_coef"])
    }

    /// JSON text with the integral numbers at `keys` written with a decimal point: transformers'
    /// strict config classes refuse an integer (`0`) for a float field such as router_aux_loss_coef.
    private static func floatLiterals(_ data: Data, keys: [String]) -> Data {
        var text = String(decoding: data, as: UTF8.self)
        for key in keys {
            text = text.replacingOccurrences(
                of: #"("\#(key)" ?: ?)(-?[0-9]+)(?=[,\s}])"#, with: "$1$2.0", options: .regularExpression)
        }
        return Data(text.utf8)
    }
}

/// A `config.json` object and typed reads of its keys; errors name the file and the key.
struct ConfigJSON {
    let object: [String: Any]
    let path: String

    init(_ data: Data, path: String) throws {
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw InteropError(path, "is not a JSON object")
        }
        (object, self.path) = (json, path)
    }

    /// The integer at `key`, nil when absent or null.
    func optionalInt(_ key: String) throws -> Int? {
        guard let raw = object[key], !(raw is NSNull) else { return nil }
        guard let n = raw as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 0x1p40
        else { throw InteropError(path, "\(key) must be an integer, got \(raw)") }
        return n.intValue
    }

    /// The integer at `key`, or `value` when absent (an error when there is no default).
    func int(_ key: String, default value: Int? = nil) throws -> Int {
        guard let n = try optionalInt(key) ?? value else { throw InteropError(path, "lacks \(key)") }
        return n
    }

    /// The number at `key`, or `value` when absent or null.
    func double(_ key: String, default value: Double) throws -> Double {
        guard let raw = object[key], !(raw is NSNull) else { return value }
        guard let n = raw as? NSNumber else { throw InteropError(path, "\(key) must be a number, got \(raw)") }
        return n.doubleValue
    }

    /// The boolean at `key`, or `value` when absent.
    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let raw = object[key], !(raw is NSNull) else { return value }
        guard let b = raw as? Bool else { throw InteropError(path, "\(key) must be true or false") }
        return b
    }
}
