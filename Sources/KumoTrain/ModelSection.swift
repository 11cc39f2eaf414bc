import KumoCore
import KumoInterop
import KumoModel

/// `[model]`: a preset, explicit Hugging Face shape fields or a pretrained model, and the initialisation.
public struct ModelSection: ConfigSection, Sendable {
    /// The preset the shape starts from, if any.
    public var preset: String?
    /// The pretrained model training starts from (a Hugging Face directory, a GGUF file or a Kumo
    /// weights file), which also gives the shape; nil: seeded random weights.
    public var initPath: String?
    /// The resolved shape.
    public var shape = ModelConfig(
        vocabSize: 0, hiddenSize: 0, intermediateSize: 0, numHiddenLayers: 0, numAttentionHeads: 0)
    /// Standard deviation of the weight initialisation.
    public var initStd = 0.02

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .custom(
                "model.preset", \.preset, kind: .string, help: "base shape: " + ConfigSchema.presetNames,
                encode: { $0.map(ConfigValue.string) }, decode: String.init(configValue:)),
            .custom(
                "model.init", \.initPath, kind: .string,
                help: "start from this model (HF directory, GGUF or Kumo weights file); its shape is the run's",
                encode: { $0.map(ConfigValue.string) }, decode: String.init(configValue:)),
        ] + shapeFields + [.value("model.init_std", \.initStd, help: "weight init std")]
    }

    /// The shape's fields, with Hugging Face's `config.json` names: the one list of them.
    static var shapeFields: [ConfigField<Self>] {
        [
            .value("model.vocab_size", \.shape.vocabSize, derived: true, help: "vocabulary size"),
            .value("model.hidden_size", \.shape.hiddenSize, derived: true, help: "model width"),
            .value("model.intermediate_size", \.shape.intermediateSize, derived: true, help: "SwiGLU FFN width"),
            .value("model.num_hidden_layers", \.shape.numHiddenLayers, derived: true, help: "number of blocks"),
            .value("model.num_attention_heads", \.shape.numAttentionHeads, derived: true, help: "query heads"),
            .value(
                "model.num_key_value_heads", \.shape.numKeyValueHeads, derived: true, help: "key/value heads (GQA)"),
            .value(
                "model.max_position_embeddings", \.shape.maxPositionEmbeddings, derived: true,
                help: "longest sequence"),
            .value("model.rope_theta", \.shape.ropeTheta, derived: true, help: "RoPE base"),
            .value("model.rms_norm_eps", \.shape.rmsNormEps, derived: true, help: "RMSNorm epsilon"),
            .value(
                "model.tie_word_embeddings", \.shape.tieWordEmbeddings, derived: true,
                help: "share embedding and output"),
            .value("model.parallel_layers", \.shape.parallelLayers, derived: true, help: "PLaMo/GPT-J parallel block"),
            .value(
                "model.num_local_experts", \.shape.numLocalExperts, derived: true,
                help: "experts per MoE feed-forward (Mixtral); 0: dense MLP"),
            .value(
                "model.num_experts_per_tok", \.shape.numExpertsPerTok, derived: true, help: "experts per token (top-k)"),
            .value(
                "model.router_aux_loss_coef", \.shape.routerAuxLossCoef, derived: true,
                help: "load-balancing loss weight"),
            .value(
                "model.router_z_loss_coef", \.shape.routerZLossCoef, derived: true, help: "router z-loss weight; 0: off"
            ),
            .value(
                "model.output_router_logits", \.shape.outputRouterLogits, derived: true,
                help: "add the load-balancing loss to the loss (as Hugging Face's Mixtral)"),
        ]
    }

    /// The fields without a LLaMA default, needed when there is no preset.
    private static var requiredShape: [PartialKeyPath<Self>] {
        [
            \.shape.vocabSize, \.shape.hiddenSize, \.shape.intermediateSize, \.shape.numHiddenLayers,
            \.shape.numAttentionHeads,
        ]
    }

    /// Builds the model from `model.preset` (if any) and explicit fields, writing every shape field back to `v`.
    static func resolve(_ v: inout [String: ConfigValue]) throws -> ModelSection {
        var section = ModelSection()
        let explicit = v
        let given = { (path: PartialKeyPath<Self>) in
            shapeFields.contains { $0.path == path && explicit[$0.key.name] != nil }
        }
        let named = try ModelSection(resolved: v)
        let presetName = named.preset
        if let path = named.initPath {
            section.shape = try initShape(path, preset: presetName, explicit: explicit)
        } else if let name = presetName {
            guard let preset = ModelPreset.config(name) else {
                throw ConfigError("model.preset = \"\(name)\": unknown preset; valid: \(ConfigSchema.presetNames)")
            }
            section.shape = preset
        } else {
            let missing = shapeFields.filter { requiredShape.contains($0.path) && !given($0.path) }
            if !missing.isEmpty {
                throw ConfigError(
                    "[model] is missing " + missing.map(\.key.name).joined(separator: ", ")
                        + "; set them or choose model.preset (\(ConfigSchema.presetNames))")
            }
        }
        let inheritsKeyValueHeads = presetName == nil && named.initPath == nil && !given(\.shape.numKeyValueHeads)
        try section.decode(from: v)
        if inheritsKeyValueHeads { section.shape.numKeyValueHeads = section.shape.numAttentionHeads }
        do {
            try section.shape.validate()
        } catch {
            throw ConfigError(error.description)
        }
        for field in shapeFields { v[field.key.name] = field.load(section) }
        return section
    }

    /// The shape of the model at `path` (`model.init`); refuses a preset beside it and any explicit
    /// shape key in `explicit` that differs from the file's, naming the key and both values.
    private static func initShape(_ path: String, preset: String?, explicit: [String: ConfigValue]) throws
        -> ModelConfig
    {
        if let preset {
            throw ConfigError(
                "model.preset = \"\(preset)\" with model.init = \"\(path)\": the shape comes from the init model; "
                    + "drop model.preset")
        }
        var section = ModelSection()
        do {
            section.shape = try loadModelConfig(path: path)
        } catch let error as any UserFacingError {
            throw ConfigError("model.init = \"\(path)\": \(error.description)")
        }
        for field in shapeFields {
            guard let given = explicit[field.key.name], let own = field.load(section), given != own else { continue }
            throw ConfigError(
                "\(field.key.name) = \(given) contradicts model.init = \"\(path)\", whose model has "
                    + "\(field.key.name) = \(own); drop \(field.key.name) or make it match")
        }
        return section.shape
    }
}
