import Foundation
import KumoCore
import KumoModel
import TOMLKit

/// A fully resolved run configuration: the TOML file, then `--set` overrides, then defaults, each section
/// decoded once into its struct.
public struct RunConfig: Sendable {
    /// Every key's value after resolution, keyed `section.key` (what `toml()` writes).
    public private(set) var values: [String: ConfigValue]
    /// `[model]`: preset, shape and initialisation.
    public let modelSection: ModelSection
    public let data: DataConfig
    public let train: TrainConfig
    public let optim: OptimConfig
    public let checkpoint: CheckpointConfig
    public let log: LogConfig
    public let run: RunSection
    public let eval: EvalConfig
    /// `[dpo]`: the preference objective.
    public let dpo: DPOConfig
    /// The prepared datasets of `data.sources`, checked.
    public let dataSources: [DataSourceSpec]

    /// The model shape.
    public var model: ModelConfig { modelSection.shape }
    public var steps: Int { train.steps }
    public var microBatchSize: Int { train.microBatchSize }
    public var globalBatchSize: Int { train.globalBatchSize }
    public var seqLength: Int { train.seqLength }
    public var seed: UInt64 { UInt64(train.seed) }
    /// Activation recomputation of `train.recompute`.
    public var recompute: ActivationRecompute { train.recompute }
    /// The precision of matrix products, `train.precision`.
    public var precision: Precision { train.precision }
    /// Threads to use: `train.threads`, or every core when 0.
    public var threads: Int { train.threads > 0 ? train.threads : ProcessInfo.processInfo.activeProcessorCount }
    public var schedule: LRSchedule { optim.schedule }
    public var adam: AdamWSettings { optim.adam }

    /// The integer value of a `[parallel]` key (the one section still read by name).
    public func int(_ key: String) -> Int {
        guard case .int(let v)? = parallelValue(key) else { preconditionFailure("\(key) is not a resolved integer") }
        return v
    }
    /// The float value of a `[parallel]` key.
    public func double(_ key: String) -> Double {
        guard let value = parallelValue(key), let v = Double(configValue: value) else {
            preconditionFailure("\(key) is not a resolved number")
        }
        return v
    }
    /// The boolean value of a `[parallel]` key.
    public func bool(_ key: String) -> Bool {
        guard case .bool(let v)? = parallelValue(key) else { preconditionFailure("\(key) is not a resolved bool") }
        return v
    }
    /// The string value of a `[parallel]` key.
    public func string(_ key: String) -> String {
        guard case .string(let v)? = parallelValue(key) else { preconditionFailure("\(key) is not a resolved string") }
        return v
    }

    private func parallelValue(_ key: String) -> ConfigValue? {
        precondition(key.hasPrefix("parallel."), "\(key): read the typed section instead")
        return values[key]
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
        modelSection = try ModelSection.resolve(&v)
        if let initPath = modelSection.initPath, raw["data.tokenizer"] == nil {
            v["data.tokenizer"] = .string(initPath)
        }
        if v["train.global_batch_size"] == nil { v["train.global_batch_size"] = v["train.micro_batch_size"] }
        if v["optim.min_lr"] == nil, case .double(let lr) = v["optim.lr"] { v["optim.min_lr"] = .double(lr / 10) }
        if v["optim.decay_steps"] == nil { v["optim.decay_steps"] = v["train.steps"] }
        values = v
        data = try DataConfig(resolved: v)
        train = try TrainConfig(resolved: v)
        optim = try OptimConfig(resolved: v)
        checkpoint = try CheckpointConfig(resolved: v)
        log = try LogConfig(resolved: v)
        eval = try EvalConfig(resolved: v)
        dpo = try DPOConfig(resolved: v)
        run = try RunSection(resolved: v)
        dataSources = try DataSourceSpec.parse(data.sources)
        try validate()
    }

    private func validate() throws {
        try Self.check(
            train,
            atLeast: [(\.steps, 1), (\.microBatchSize, 1), (\.globalBatchSize, 1), (\.seqLength, 1), (\.threads, 0)])
        try Self.check(optim, atLeast: [(\.warmupSteps, 0)])
        try Self.check(log, atLeast: [(\.every, 1), (\.sampleTokens, 0)])
        try validateBatchAndOptimizer()
        try validateDataChoice()
        try validatePostTraining()
        try validateParallel()
        try Self.check(checkpoint, atLeast: [(\.every, 0), (\.keep, 0)])
        try Self.check(eval, atLeast: [(\.interval, 0), (\.limit, 0), (\.numFewshot, 0), (\.contextLength, 0)])
        if eval.interval > 0 && eval.tasks.isEmpty {
            throw ConfigError("eval.interval = \(eval.interval) needs eval.tasks, e.g. [\"jcommonsenseqa\"]")
        }
        try train.spike.check(checkpointEvery: checkpoint.every)
    }

    /// Refuses an integer key of `section` below its minimum, naming the key.
    private static func check<Section: ConfigSection>(
        _ section: Section, atLeast bounds: [(KeyPath<Section, Int>, Int)]
    ) throws {
        for (path, min) in bounds where section[keyPath: path] < min {
            throw ConfigError("\(Section.name(of: path)) = \(section[keyPath: path]): must be at least \(min)")
        }
    }

    private func validateBatchAndOptimizer() throws {
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
        if !(optim.lr > 0) { throw ConfigError("optim.lr must be positive") }
        if optim.minLR < 0 || optim.minLR > optim.lr {
            throw ConfigError("optim.min_lr = \(optim.minLR) must lie in [0, optim.lr]")
        }
        for path in [\OptimConfig.beta1, \.beta2] where !(0..<1).contains(optim[keyPath: path]) {
            throw ConfigError("\(OptimConfig.name(of: path)) = \(optim[keyPath: path]): must lie in [0, 1)")
        }
        if !(optim.eps > 0) { throw ConfigError("optim.eps must be positive (LLM-jp uses 1e-8)") }
        if optim.gradClip < 0 { throw ConfigError("optim.grad_clip must be >= 0 (0 turns clipping off)") }
        if optim.weightDecay < 0 { throw ConfigError("optim.weight_decay must be >= 0") }
    }

    /// Refuses a `[data]` section that gives no source or several.
    private func validateDataChoice() throws {
        let given = [
            data.synthetic ? "data.synthetic" : nil, data.path.isEmpty ? nil : "data.path",
            data.sources.isEmpty ? nil : "data.sources",
        ].compactMap { $0 }
        if given.count != 1 {
            throw ConfigError(
                (given.isEmpty
                    ? "[data] needs" : "[data] sets \(given.joined(separator: " and ")); give exactly one of")
                    + " data.sources (datasets made by `kumo data prepare`), data.path (JSONL or text files, tokenized "
                    + "in memory) or data.synthetic = true")
        }
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
