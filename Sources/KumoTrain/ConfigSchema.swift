/// Every configuration key Kumo reads, with its type, default and meaning.
public enum ConfigSchema {
    /// The kind of value a key takes.
    public enum Kind: String, Sendable {
        case int, double, bool, string, strings, tables
        /// Whether `value` is of this kind (an integer is accepted where a float is expected).
        func accepts(_ value: ConfigValue) -> Bool {
            switch (self, value) {
            case (.int, .int), (.double, .double), (.double, .int), (.bool, .bool), (.string, .string),
                (.strings, .strings), (.strings, .string), (.tables, .tables), (.tables, .strings([])):
                return true
            default: return false
            }
        }
    }

    /// One key: `section.name`, its kind, its default (nil: no default, derived or required).
    public struct Key: Sendable {
        public let name: String
        public let kind: Kind
        public let defaultValue: ConfigValue?
        public let help: String
    }

    /// The sections in the order a resolved config is written.
    public static let sections = [
        "model", "data", "train", "optim", "parallel", "checkpoint", "log", "eval", "dpo", "run",
    ]

    /// All keys: each section struct's fields, and the `[parallel]` keys (read by name until they have a struct).
    public static let keys: [Key] =
        ModelSection.keys + DataConfig.keys + TrainConfig.keys + OptimConfig.keys + parallelKeys
        + CheckpointConfig.keys + LogConfig.keys + EvalConfig.keys + DPOConfig.keys + RunSection.keys

    /// The `[parallel]` keys.
    static let parallelKeys: [Key] = [
        Key(name: "parallel.tensor", kind: .int, defaultValue: .int(1), help: "tensor-parallel size"),
        Key(
            name: "parallel.sequence", kind: .bool, defaultValue: .bool(false),
            help: "sequence parallelism: norms and residuals split by rows over the tensor group"),
        Key(name: "parallel.pipeline", kind: .int, defaultValue: .int(1), help: "pipeline-parallel size"),
        Key(name: "parallel.schedule", kind: .string, defaultValue: .string("1f1b"), help: "pipeline: 1f1b|gpipe"),
        Key(
            name: "parallel.expert", kind: .int, defaultValue: .int(1),
            help: "expert-parallel size: a mixture's experts split over this many data-parallel ranks"),
        Key(name: "parallel.zero_stage", kind: .int, defaultValue: .int(0), help: "ZeRO stage 0-3"),
        Key(name: "parallel.shard_group_size", kind: .int, defaultValue: .int(0), help: "hybrid shard group"),
        Key(name: "parallel.quantized_allgather", kind: .string, defaultValue: .string("none"), help: "none|bf16|int8"),
        Key(
            name: "parallel.comm_timeout_s", kind: .double, defaultValue: .double(300),
            help: "seconds a collective may wait before the job is aborted"),
        Key(name: "parallel.bucket_mib", kind: .double, defaultValue: .double(4), help: "gradient all-reduce bucket"),
        Key(
            name: "parallel.hierarchical", kind: .bool, defaultValue: .bool(true),
            help: "data-parallel all-reduce across hosts: reduce-scatter in a host, all-reduce across, all-gather"),
    ]

    static let presetNames = "tiny, small, 150m, 440m, 980m, 1.8b, 3.7b, 7.2b, 13b, 172b"

    /// The key named `name`, if Kumo knows it.
    public static func key(_ name: String) -> Key? { keys.first { $0.name == name } }

    /// Names of the keys of a section, for error messages.
    public static func keyNames(in section: String) -> [String] {
        keys(in: section).map { String($0.name.dropFirst(section.count + 1)) }
    }

    /// The keys of a section, in schema order.
    static func keys(in section: String) -> [Key] { keys.filter { $0.name.hasPrefix(section + ".") } }

    /// Every key with its type, default and meaning, by section (`kumo train --help-config`).
    public static func reference() -> String {
        sections.map { section in
            "[\(section)]\n"
                + keys(in: section).map { key in
                    let value = key.defaultValue.map { " = \($0)" } ?? ""
                    return "  \(key.name.dropFirst(section.count + 1)) (\(key.kind.rawValue))\(value): \(key.help)\n"
                }.joined()
        }.joined(separator: "\n")
    }
}
