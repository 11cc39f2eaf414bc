import Foundation
import KumoCore
import KumoModel
import TOMLKit

/// A fully resolved run configuration: the TOML file, then `--set` overrides, then defaults.
public struct RunConfig: Sendable {
    /// Every key's value after resolution, keyed `section.key`.
    public private(set) var values: [String: ConfigValue]
    /// The model shape.
    public let model: ModelConfig
    /// The prepared datasets of `data.sources`, checked.
    public private(set) var dataSources: [DataSourceSpec] = []

    public var steps: Int { int("train.steps") }
    public var microBatchSize: Int { int("train.micro_batch_size") }
    public var globalBatchSize: Int { int("train.global_batch_size") }
    public var seqLength: Int { int("train.seq_length") }
    public var seed: UInt64 { UInt64(int("train.seed")) }
    /// Activation recomputation of `train.recompute` (checked when the config is loaded).
    public var recompute: ActivationRecompute { ActivationRecompute(rawValue: string("train.recompute")) ?? .none }
    /// The precision of matrix products, `train.precision` (checked when the config is loaded).
    public var precision: Precision { Precision(rawValue: string("train.precision")) ?? .fp32 }
    /// Threads to use: `train.threads`, or every core when 0.
    public var threads: Int {
        int("train.threads") > 0 ? int("train.threads") : ProcessInfo.processInfo.activeProcessorCount
    }
    public var schedule: LRSchedule {
        LRSchedule(
            maxLR: double("optim.lr"), minLR: double("optim.min_lr"), warmupSteps: int("optim.warmup_steps"),
            decaySteps: int("optim.decay_steps"))
    }
    public var adam: AdamWSettings {
        AdamWSettings(
            beta1: Float(double("optim.beta1")), beta2: Float(double("optim.beta2")), eps: Float(double("optim.eps")),
            weightDecay: Float(double("optim.weight_decay")), gradClip: double("optim.grad_clip"))
    }

    /// The integer value of a key known to the schema.
    public func int(_ key: String) -> Int {
        guard case .int(let v) = values[key] else { preconditionFailure("\(key) is not a resolved integer") }
        return v
    }
    /// The float value of a key known to the schema.
    public func double(_ key: String) -> Double {
        switch values[key] {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: preconditionFailure("\(key) is not a resolved number")
        }
    }
    /// The boolean value of a key known to the schema.
    public func bool(_ key: String) -> Bool {
        guard case .bool(let v) = values[key] else { preconditionFailure("\(key) is not a resolved bool") }
        return v
    }
    /// The string value of a key known to the schema.
    public func string(_ key: String) -> String {
        guard case .string(let v) = values[key] else { preconditionFailure("\(key) is not a resolved string") }
        return v
    }
    /// The string-list value of a key (a single string counts as a one-element list).
    public func strings(_ key: String) -> [String] {
        switch values[key] {
        case .strings(let v): return v
        case .string(let v): return [v]
        default: preconditionFailure("\(key) is not a resolved list")
        }
    }

    /// The table-list value of a key (an empty list may have been written `[]`).
    public func tables(_ key: String) -> [[String: ConfigValue]] {
        switch values[key] {
        case .tables(let v): return v
        case .strings(let v) where v.isEmpty: return []
        default: preconditionFailure("\(key) is not a resolved table list")
        }
    }

    /// Reads `path` (if given) and applies `overrides` of the form `section.key=value`.
    public static func load(path: String?, overrides: [String]) throws -> RunConfig {
        var raw: [String: ConfigValue] = [:]
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError("cannot read config file \(path)")
            }
            let table: TOMLTable
            do {
                table = try TOMLTable(string: String(decoding: data, as: UTF8.self))
            } catch let e as TOMLParseError {
                throw ConfigError("\(path):\(e.source.begin.line):\(e.source.begin.column): \(e.description)")
            }
            try flatten(table, into: &raw, file: path)
        }
        let fileDecayFollowsSteps = raw["optim.decay_steps"] != nil && raw["optim.decay_steps"] == raw["train.steps"]
        for item in overrides {
            guard let eq = item.firstIndex(of: "=") else {
                throw ConfigError("--set \(item): expected section.key=value, e.g. --set train.steps=10")
            }
            let key = String(item[..<eq]).trimmingCharacters(in: .whitespaces)
            try check(key: key, source: "--set")
            raw[key] = ConfigValue.parse(String(item[item.index(after: eq)...]).trimmingCharacters(in: .whitespaces))
        }
        // A file's decay_steps equal to its train.steps (as config.toml resolves the default) follows a --set
        // of train.steps alone, as Megatron's lr-decay-iters follows train-iters: a run resumed for more
        // steps gets the schedule of its new length.
        let overridden = Set(overrides.map { $0.prefix { $0 != "=" }.trimmingCharacters(in: .whitespaces) })
        if fileDecayFollowsSteps, overridden.contains("train.steps"), !overridden.contains("optim.decay_steps") {
            raw["optim.decay_steps"] = nil
        }
        return try RunConfig(raw: raw)
    }

    private static func flatten(_ table: TOMLTable, into raw: inout [String: ConfigValue], file: String) throws {
        for section in table.keys {
            guard let sub = table[section]?.table else {
                throw ConfigError(
                    "\(file): top-level key '\(section)' must be a section; sections are "
                        + ConfigSchema.sections.map { "[\($0)]" }.joined(separator: " "))
            }
            try flattenKeys(of: sub, prefix: section, into: &raw, file: file)
        }
    }

    /// Adds the keys of `table` as `prefix.key`, descending into sub-tables such as `[train.spike]`.
    private static func flattenKeys(
        of table: TOMLTable, prefix: String, into raw: inout [String: ConfigValue], file: String
    ) throws {
        for name in table.keys {
            let key = prefix + "." + name
            if let sub = table[name]?.table {
                try flattenKeys(of: sub, prefix: key, into: &raw, file: file)
                continue
            }
            try check(key: key, source: file)
            guard let value = table[name].flatMap(ConfigValue.init) else {
                throw ConfigError("\(file): \(key) has an unsupported value type")
            }
            raw[key] = value
        }
    }

    private static func check(key: String, source: String) throws {
        if ConfigSchema.key(key) != nil { return }
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, ConfigSchema.sections.contains(parts[0]) else {
            throw ConfigError(
                "\(source): unknown key '\(key)'; keys are section.name with sections "
                    + ConfigSchema.sections.joined(separator: ", "))
        }
        throw ConfigError(
            "\(source): unknown key '\(key)'; valid keys in [\(parts[0])]: "
                + ConfigSchema.keyNames(in: parts[0]).joined(separator: ", "))
    }

    private init(raw: [String: ConfigValue]) throws {
        for (key, value) in raw {
            let kind = ConfigSchema.key(key)!.kind
            if !kind.accepts(value) {
                throw ConfigError("\(key) = \(value): expected a value of type \(kind.rawValue)")
            }
            if case .double(let d) = value, !d.isFinite {
                throw ConfigError("\(key) = \(d): expected a finite number (inf and nan are refused)")
            }
        }
        var v = raw
        for key in ConfigSchema.keys where v[key.name] == nil {
            if let d = key.defaultValue { v[key.name] = d }
        }
        // Normalise integers given for float keys, and an empty list for table-list keys, so typed reads stay
        // simple and a resolved config reads back to the same values.
        for key in ConfigSchema.keys {
            switch (key.kind, v[key.name]) {
            case (.double, .int(let i)?): v[key.name] = .double(Double(i))
            case (.tables, .strings([])?): v[key.name] = .tables([])
            default: break
            }
        }
        // An empty list `[]` reads as a string list; a table-list key holds it as an empty table list.
        for key in ConfigSchema.keys where key.kind == .tables {
            if case .strings([]) = v[key.name] { v[key.name] = .tables([]) }
        }
        model = try Self.resolveModel(&v)
        if v["train.global_batch_size"] == nil { v["train.global_batch_size"] = v["train.micro_batch_size"] }
        if v["optim.min_lr"] == nil, case .double(let lr) = v["optim.lr"] { v["optim.min_lr"] = .double(lr / 10) }
        if v["optim.decay_steps"] == nil { v["optim.decay_steps"] = v["train.steps"] }
        values = v
        dataSources = try DataSourceSpec.parse(tables("data.sources"))
        try validate()
    }

    private static let modelFields = [
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "rope_theta", "rms_norm_eps", "tie_word_embeddings",
        "parallel_layers",
    ]

    /// Builds the model from `model.preset` (if any) and explicit fields, writing every field back.
    private static func resolveModel(_ v: inout [String: ConfigValue]) throws -> ModelConfig {
        var base: [String: ConfigValue] = [:]
        if case .string(let name) = v["model.preset"] {
            guard let preset = ModelPreset.config(name) else {
                throw ConfigError("model.preset = \"\(name)\": unknown preset; valid: \(ConfigSchema.presetNames)")
            }
            base = [
                "vocab_size": .int(preset.vocabSize), "hidden_size": .int(preset.hiddenSize),
                "intermediate_size": .int(preset.intermediateSize), "num_hidden_layers": .int(preset.numHiddenLayers),
                "num_attention_heads": .int(preset.numAttentionHeads),
                "num_key_value_heads": .int(preset.numKeyValueHeads),
                "max_position_embeddings": .int(preset.maxPositionEmbeddings), "rope_theta": .double(preset.ropeTheta),
                "rms_norm_eps": .double(preset.rmsNormEps), "tie_word_embeddings": .bool(preset.tieWordEmbeddings),
                "parallel_layers": .bool(preset.parallelLayers),
            ]
        }
        func field(_ name: String) -> ConfigValue? { v["model." + name] ?? base[name] }
        let required = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"]
        let missing = required.filter { field($0) == nil }
        if !missing.isEmpty {
            throw ConfigError(
                "[model] is missing " + missing.map { "model.\($0)" }.joined(separator: ", ")
                    + "; set them or choose model.preset (\(ConfigSchema.presetNames))")
        }
        func int(_ n: String) -> Int? { if case .int(let x) = field(n) { return x } else { return nil } }
        func dbl(_ n: String) -> Double? { if case .double(let x) = field(n) { return x } else { return nil } }
        func bool(_ n: String) -> Bool? { if case .bool(let x) = field(n) { return x } else { return nil } }
        let config = ModelConfig(
            vocabSize: int("vocab_size")!, hiddenSize: int("hidden_size")!, intermediateSize: int("intermediate_size")!,
            numHiddenLayers: int("num_hidden_layers")!, numAttentionHeads: int("num_attention_heads")!,
            numKeyValueHeads: int("num_key_value_heads"), maxPositionEmbeddings: int("max_position_embeddings") ?? 4096,
            ropeTheta: dbl("rope_theta") ?? 10000, rmsNormEps: dbl("rms_norm_eps") ?? 1e-5,
            tieWordEmbeddings: bool("tie_word_embeddings") ?? false, parallelLayers: bool("parallel_layers") ?? false)
        do {
            try config.validate()
        } catch {
            throw ConfigError(error.description)
        }
        let resolved: [String: ConfigValue] = [
            "vocab_size": .int(config.vocabSize), "hidden_size": .int(config.hiddenSize),
            "intermediate_size": .int(config.intermediateSize), "num_hidden_layers": .int(config.numHiddenLayers),
            "num_attention_heads": .int(config.numAttentionHeads), "num_key_value_heads": .int(config.numKeyValueHeads),
            "max_position_embeddings": .int(config.maxPositionEmbeddings), "rope_theta": .double(config.ropeTheta),
            "rms_norm_eps": .double(config.rmsNormEps), "tie_word_embeddings": .bool(config.tieWordEmbeddings),
            "parallel_layers": .bool(config.parallelLayers),
        ]
        for name in modelFields { v["model." + name] = resolved[name] }
        return config
    }

    private func validate() throws {
        func atLeast(_ key: String, _ min: Int) throws {
            if int(key) < min { throw ConfigError("\(key) = \(int(key)): must be at least \(min)") }
        }
        try atLeast("train.steps", 1)
        try atLeast("train.micro_batch_size", 1)
        try atLeast("train.global_batch_size", 1)
        try atLeast("train.seq_length", 1)
        try atLeast("train.threads", 0)
        try atLeast("optim.warmup_steps", 0)
        try atLeast("log.every", 1)
        try atLeast("log.sample_tokens", 0)
        if ActivationRecompute(rawValue: string("train.recompute")) == nil {
            throw ConfigError(
                "train.recompute = \"\(string("train.recompute"))\": valid are \"none\" (keep every block's activations) "
                    + "and \"full\" (recompute them in backward, to save memory)")
        }
        if Precision(rawValue: string("train.precision")) == nil {
            throw ConfigError(
                "train.precision = \"\(string("train.precision"))\": valid are \"fp32\" and \"bf16\" (bf16 matrix "
                    + "products with fp32 accumulation and fp32 master weights)")
        }
        if globalBatchSize % microBatchSize != 0 {
            throw ConfigError(
                "train.global_batch_size = \(globalBatchSize) must be a multiple of train.micro_batch_size = "
                    + "\(microBatchSize) (global = micro × accumulation steps × data-parallel size)")
        }
        if seqLength > model.maxPositionEmbeddings {
            throw ConfigError(
                "train.seq_length = \(seqLength) exceeds model.max_position_embeddings = \(model.maxPositionEmbeddings)"
            )
        }
        if !(double("optim.lr") > 0) { throw ConfigError("optim.lr must be positive") }
        if double("optim.min_lr") < 0 || double("optim.min_lr") > double("optim.lr") {
            throw ConfigError("optim.min_lr = \(double("optim.min_lr")) must lie in [0, optim.lr]")
        }
        for key in ["optim.beta1", "optim.beta2"] where !(0..<1).contains(double(key)) {
            throw ConfigError("\(key) = \(double(key)): must lie in [0, 1)")
        }
        if !(double("optim.eps") > 0) { throw ConfigError("optim.eps must be positive (LLM-jp uses 1e-8)") }
        if double("optim.grad_clip") < 0 { throw ConfigError("optim.grad_clip must be >= 0 (0 turns clipping off)") }
        if double("optim.weight_decay") < 0 { throw ConfigError("optim.weight_decay must be >= 0") }
        let given = [
            bool("data.synthetic") ? "data.synthetic" : nil, strings("data.path").isEmpty ? nil : "data.path",
            tables("data.sources").isEmpty ? nil : "data.sources",
        ].compactMap { $0 }
        if given.count != 1 {
            throw ConfigError(
                (given.isEmpty
                    ? "[data] needs" : "[data] sets \(given.joined(separator: " and ")); give exactly one of")
                    + " data.sources (datasets made by `kumo data prepare`), data.path (JSONL or text files, tokenized "
                    + "in memory) or data.synthetic = true")
        }

        try validateParallel()
        try atLeast("checkpoint.every", 0)
        try atLeast("checkpoint.keep", 0)
        try atLeast("eval.interval", 0)
        try atLeast("eval.limit", 0)
        try atLeast("eval.num_fewshot", 0)
        try atLeast("eval.context_length", 0)
        if int("eval.interval") > 0 && strings("eval.tasks").isEmpty {
            throw ConfigError("eval.interval = \(int("eval.interval")) needs eval.tasks, e.g. [\"jcommonsenseqa\"]")
        }
        _ = try SpikeSettings(self)
    }

    /// The configuration as TOML, every key resolved (written to the run directory).
    public func toml() -> String {
        var out = ""
        for section in ConfigSchema.sections {
            out += "[\(section)]\n"
            for key in ConfigSchema.keys where key.name.hasPrefix(section + ".") {
                guard let value = values[key.name] else { continue }
                out += "\(key.name.dropFirst(section.count + 1)) = \(value)\n"
            }
            out += "\n"
        }
        return out
    }
}
