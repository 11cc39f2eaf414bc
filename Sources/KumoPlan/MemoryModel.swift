import KumoCore
import KumoModel
import KumoParallel

/// What a training run is, as far as its memory and speed go: the model, the parallel layout over
/// `ranks` processes, the batch, activation recompute and precision.
public struct TrainingLayout: Sendable, Equatable {
    public var model: ModelConfig
    public var parallel: ParallelConfig
    public var ranks: Int
    public var batch: BatchShape
    /// Sequences of a sample (2 for DPO's chosen and rejected pair).
    public var rowsPerSample: Int
    public var recompute: ActivationRecompute
    public var precision: Precision

    public init(
        model: ModelConfig, parallel: ParallelConfig, ranks: Int, batch: BatchShape, rowsPerSample: Int = 1,
        recompute: ActivationRecompute = .none, precision: Precision = .fp32
    ) {
        self.model = model
        self.parallel = parallel
        self.ranks = ranks
        self.batch = batch
        self.rowsPerSample = rowsPerSample
        self.recompute = recompute
        self.precision = precision
    }

    /// Data-parallel ranks: the ranks over tensor × pipeline.
    public var dataParallel: Int { max(1, ranks / (parallel.tensor * parallel.pipeline)) }
    /// Micro-batches each rank runs per step.
    public var accumulationSteps: Int { max(1, batch.global / (batch.micro * dataParallel)) }
    /// Micro-batches of a step whose backward re-runs `stage`'s forward (stage recompute; on one
    /// pipeline stage each backward follows its own forward).
    public func reforwards(stage: Int) -> Int {
        guard recompute == .stage, parallel.pipeline > 1 else { return 0 }
        return parallel.schedule.reforwards(stage: stage, stages: parallel.pipeline, microBatches: accumulationSteps)
    }

    /// The ranks ZeRO partitions over: the data-parallel group, a hybrid shard group of it, or under
    /// expert parallelism the ranks holding the same experts.
    public var shardRanks: Int {
        if parallel.expert > 1 { return max(1, dataParallel / parallel.expert) }
        let k = parallel.shardGroupSize
        return k > 0 && k < dataParallel ? k : dataParallel
    }
}

/// Bytes one rank holds during training, part by part, computed before anything is allocated from
/// the sizes the trainer allocates: `ParameterLayout` for the rank's stage and tensor slice,
/// `ZeROPartition`, `ShardedGradients.Scratch`, the pipeline schedule's activation slots and
/// `LlamaModel.activationBytes`. Each part but `runtime` equals the trainer's report of it
/// (`memory.*_bytes` in metrics.jsonl).
public struct RankMemory: Sendable, Equatable {
    /// The pipeline stage this rank runs.
    public var stage: Int
    /// fp32 parameters resident (ZeRO-3: the rank's partition).
    public var weights = 0
    /// The bf16 copy of the parameters products read under bf16.
    public var weightsBF16 = 0
    /// ZeRO-3: the gathered stages resident at once (the stage in use and the one prefetched).
    public var gatheredWeights = 0
    /// Gradients: the whole buffer, or ZeRO-2/3's shard with backward's scratch and bucket staging.
    public var gradients = 0
    /// AdamW's two moments (ZeRO-1 and up: of the rank's partition).
    public var optimizer = 0
    /// Forward activations of the micro-batches in flight, and backward's scratch.
    public var activations = 0
    /// The RoPE table.
    public var rope = 0
    /// The GEMM peak measurement at start-up, freed before the first step (so it counts only where
    /// it exceeds the activations).
    public var startupScratch = 0
    /// The process beside these: runtime, libraries, MPI, the data pipeline (measured, not derived).
    public var runtime = 0

    /// The parts as (JSON key, bytes).
    public var parts: [(String, Int)] {
        [
            ("weights", weights), ("weights_bf16", weightsBF16), ("gathered_weights", gatheredWeights),
            ("gradients", gradients), ("optimizer", optimizer), ("activations", activations), ("rope", rope),
            ("startup_scratch", startupScratch), ("runtime", runtime),
        ]
    }

    /// The peak: the state and runtime throughout, and the larger of a step's activations with
    /// ZeRO-3's gathered stages or the start-up measurement.
    public var total: Int {
        weights + weightsBF16 + gradients + optimizer + rope + runtime
            + max(activations + gatheredWeights, startupScratch)
    }
}

/// The memory of every pipeline stage's largest rank (the first of its ZeRO partition, holding the
/// longest piece) for a `TrainingLayout`.
public struct MemoryModel: Sendable {
    public let layout: TrainingLayout
    public let stages: [RankMemory]

    /// `runtimeBytes`: the measured process overhead each rank carries (`HardwareProfile`).
    public init(_ layout: TrainingLayout, runtimeBytes: Int = 0) throws(ParallelConfigError) {
        self.layout = layout
        let shards = try layout.parallel.stageShards(layout.model, seqLen: layout.batch.seqLen)
        stages = shards.indices.map { Self.rank(layout, shards: shards, stage: $0, runtimeBytes: runtimeBytes) }
    }

    /// The rank with the most bytes.
    public var largest: RankMemory { stages.max { $0.total < $1.total }! }

    /// The largest rank's total: what each rank must have.
    public var peakBytesPerRank: Int { largest.total }

    private static func rank(_ t: TrainingLayout, shards: [ModelShard], stage: Int, runtimeBytes: Int) -> RankMemory {
        let c = t.model
        let zero = t.parallel.zeroStage
        let layout = ParameterLayout(c, shard: shards[stage])
        let partition = ZeROPartition(count: layout.count, ranks: zero.shardsOptimizer ? t.shardRanks : 1)
        let piece = partition.range(of: 0).count
        var m = RankMemory(stage: stage)
        m.weights = 4 * (zero.shardsParameters ? piece : layout.count)
        m.weightsBF16 = t.precision == .bf16 ? 2 * layout.count : 0
        m.gatheredWeights = zero.shardsParameters ? ShardedParameters.peakGatheredBytes(layout) : 0
        m.gradients =
            zero.shardsGradients
            ? 4 * piece + ShardedGradients.Scratch(layout: layout, bucketBytes: t.parallel.bucketBytes).bytes
            : 4 * layout.count
        m.optimizer = 8 * piece
        let slots =
            t.parallel.pipeline > 1
            ? t.parallel.schedule.slots(stage: stage, stages: shards.count, microBatches: t.accumulationSteps) : 1
        m.activations = LlamaModel.activationBytes(
            c, shard: shards[stage], batch: t.batch.micro * t.rowsPerSample, seqLen: t.batch.seqLen,
            recompute: t.recompute, slots: slots)
        let rope = RoPETable.bytes(headDim: c.headDim, maxPositions: c.maxPositionEmbeddings)
        m.rope = rope < Double(Int.max / 8) ? Int(rope) : Int.max / 8
        m.startupScratch = t.precision == .bf16 ? BF16GEMM.measurementScratchBytes : SgemmPeak.scratchBytes
        m.runtime = runtimeBytes
        return m
    }
}
