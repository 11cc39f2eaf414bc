import KumoModel

/// `[model]`: a preset or explicit Hugging Face shape fields, and the initialisation.
public struct ModelSection: ConfigSection, Sendable {
    /// The preset the shape starts from, if any.
    public var preset: String?
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
                encode: { $0.map(ConfigValue.string) }, decode: String.init(configValue:))
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
        let presetName = try ModelSection(resolved: v).preset
        if let name = presetName {
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
        let inheritsKeyValueHeads = presetName == nil && !given(\.shape.numKeyValueHeads)
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
}
