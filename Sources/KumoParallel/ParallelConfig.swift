import KumoComm

/// The parallel layout was refused; the message names the `parallel.*` keys and what would work.
public struct ParallelConfigError: Error, CustomStringConvertible, Equatable {
    public var description: String

    /// An error with a message that says what to do.
    public init(_ description: String) { self.description = description }

    /// `parallel.zero_stage` is not one of the stages.
    public static func unknownZeROStage(_ stage: Int) -> ParallelConfigError {
        ParallelConfigError(
            "parallel.zero_stage = \(stage): valid are 0 (plain data parallelism), 1 (optimizer state sharded), "
                + "2 (gradients sharded too) and 3 (parameters sharded too)")
    }

    /// `parallel.schedule` names no schedule.
    public static func unknownSchedule(_ name: String) -> ParallelConfigError {
        let schedules = PipelineSchedule.allCases.map { "\"\($0.rawValue)\"" }
        return ParallelConfigError(
            "parallel.schedule = \"\(name)\": valid are \(schedules.joined(separator: " and "))")
    }

    /// `parallel.quantized_allgather` names no codec, or one without ZeRO-3.
    public static func quantizedGather(_ name: String) -> ParallelConfigError {
        ParallelConfigError(
            "parallel.quantized_allgather = \"\(name)\": valid are \"none\", \"bf16\" and \"int8\", "
                + "and a quantized gather needs parallel.zero_stage = 3 (it encodes ZeRO-3's parameter gathers)")
    }
}

/// Every setting of `[parallel]`, typed: the sizes of the mesh's tensor and pipeline dimensions
/// (data parallelism takes the remaining ranks), the ZeRO stage and its sharding, and the
/// communication knobs. `parallelize` checks the combination and composes it.
public struct ParallelConfig: Sendable, Equatable {
    /// Tensor-parallel size (`parallel.tensor`).
    public var tensor: Int
    /// Sequence parallelism over the tensor group (`parallel.sequence`).
    public var sequence: Bool
    /// Pipeline-parallel size (`parallel.pipeline`).
    public var pipeline: Int
    /// The order of the pipeline's micro-batches (`parallel.schedule`).
    public var schedule: PipelineSchedule
    /// Expert-parallel size (`parallel.expert`): a mixture's experts split over groups of this many
    /// consecutive data-parallel ranks, tokens dispatched to them by all-to-all.
    public var expert: Int
    /// What ZeRO partitions (`parallel.zero_stage`).
    public var zeroStage: ZeROStage
    /// Hybrid sharding: ZeRO-3 shards over groups of this many data-parallel ranks, 0 over all
    /// of them (`parallel.shard_group_size`).
    public var shardGroupSize: Int
    /// How ZeRO-3's parameter gathers are encoded (`parallel.quantized_allgather`).
    public var quantizedAllGather: GatherCodec
    /// Seconds a collective may stall before the job is stopped (`parallel.comm_timeout_s`).
    public var commTimeoutSeconds: Double
    /// Size of a gradient all-reduce bucket in MiB (`parallel.bucket_mib`).
    public var bucketMiB: Double
    /// Whether a data-parallel group spanning hosts (the same number of ranks, above one, on each)
    /// all-reduces hierarchically (`parallel.hierarchical`; `HierarchicalGroup`).
    public var hierarchical: Bool

    /// A configuration; the defaults are `[parallel]`'s: one rank's worth of everything.
    public init(
        tensor: Int = 1, sequence: Bool = false, pipeline: Int = 1, schedule: PipelineSchedule = .oneForwardOneBackward,
        expert: Int = 1, zeroStage: ZeROStage = .none, shardGroupSize: Int = 0, quantizedAllGather: GatherCodec = .fp32,
        commTimeoutSeconds: Double = 300, bucketMiB: Double = 4, hierarchical: Bool = true
    ) {
        self.tensor = tensor
        self.sequence = sequence
        self.pipeline = pipeline
        self.schedule = schedule
        self.expert = expert
        self.zeroStage = zeroStage
        self.shardGroupSize = shardGroupSize
        self.quantizedAllGather = quantizedAllGather
        self.commTimeoutSeconds = commTimeoutSeconds
        self.bucketMiB = bucketMiB
        self.hierarchical = hierarchical
    }

    /// The gradient bucket size in bytes.
    public var bucketBytes: Int { Int(bucketMiB * 1_048_576) }
}
