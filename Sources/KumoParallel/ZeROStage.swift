/// How much of the training state ZeRO partitions over the shard group (`parallel.zero_stage`):
/// each stage shards what the one before did and one thing more.
public enum ZeROStage: Int, Sendable, CaseIterable, Comparable {
    /// Plain data parallelism: every rank holds all of the state.
    case none = 0
    /// ZeRO-1: the AdamW moments are partitioned.
    case optimizer = 1
    /// ZeRO-2: the summed gradients are too (reduce-scattered during backward).
    case gradients = 2
    /// ZeRO-3: the parameters are too (gathered stage by stage for forward and backward).
    case parameters = 3

    /// Whether the optimizer state is partitioned (ZeRO-1 and above).
    public var shardsOptimizer: Bool { self >= .optimizer }
    /// Whether the gradients are partitioned (ZeRO-2 and above).
    public var shardsGradients: Bool { self >= .gradients }
    /// Whether the parameters are partitioned (ZeRO-3).
    public var shardsParameters: Bool { self == .parameters }

    public static func < (a: ZeROStage, b: ZeROStage) -> Bool { a.rawValue < b.rawValue }
}
