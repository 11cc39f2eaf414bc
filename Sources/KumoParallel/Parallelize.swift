import KumoComm
import KumoCore
import KumoModel

// Where parallelism is composed (as torchtitan's `parallelize_llama`): `ParallelConfig.validate`
// refuses the combinations that cannot work, `parallelize` forms a rank's groups, its model shard
// and the data-parallel, ZeRO, tensor-parallel and pipeline wrappers around it.

/// The batch a plan is composed for, in sequences.
public struct BatchShape: Sendable, Equatable {
    /// Sequences of one micro-batch on one rank.
    public var micro: Int
    /// Sequences of one optimizer step over the whole job.
    public var global: Int
    /// Tokens per sequence.
    public var seqLen: Int

    /// A micro-batch of `micro` × `seqLen` tokens, `global` sequences per step.
    public init(micro: Int, global: Int, seqLen: Int) {
        self.micro = micro
        self.global = global
        self.seqLen = seqLen
    }
}

extension ParallelConfig {
    /// Refuses settings that cannot work on any world size, saying what would: the tensor split
    /// of `model`, sequence parallelism, the pipeline cut, and which ZeRO stages combine with them.
    public func validate(_ model: ModelConfig, batch: BatchShape) throws(ParallelConfigError) {
        try validateTensor(model, rows: batch.micro * batch.seqLen)
        try validatePipeline(model, seqLen: batch.seqLen)
        try validateExpert(model, rows: batch.micro * batch.seqLen)
        if shardGroupSize < 0 || (shardGroupSize > 0 && zeroStage != .parameters) {
            throw ParallelConfigError(
                "parallel.shard_group_size = \(shardGroupSize): hybrid sharding needs "
                    + "parallel.zero_stage = 3 and a size > 0 that divides the data-parallel size (0: shard over all)")
        }
        if quantizedAllGather != .fp32 && zeroStage != .parameters {
            throw .quantizedGather(quantizedAllGather.rawValue)
        }
        for (key, value) in [("parallel.comm_timeout_s", commTimeoutSeconds), ("parallel.bucket_mib", bucketMiB)]
        where !(value > 0) {
            throw ParallelConfigError("\(key) = \(value): must be positive")
        }
    }

    /// Checks `tensor` and `sequence` against the model, ZeRO and the micro-batch's `rows`.
    private func validateTensor(_ model: ModelConfig, rows: Int) throws(ParallelConfigError) {
        let t = tensor
        guard t >= 1 else { throw ParallelConfigError("parallel.tensor = \(t): must be at least 1") }
        if sequence && t == 1 {
            throw ParallelConfigError(
                "parallel.sequence = true needs parallel.tensor > 1: sequence parallelism splits the norms' rows "
                    + "over the tensor group")
        }
        guard t > 1 else { return }
        do {
            try ModelShard(tensorSize: t, layers: 0..<model.numHiddenLayers, hasEmbedding: true, hasHead: true)
                .validate(model)
        } catch {
            throw ParallelConfigError(error.description)
        }
        if zeroStage.shardsGradients {
            throw ParallelConfigError(
                "parallel.zero_stage = \(zeroStage.rawValue) with parallel.tensor = \(t) is not supported: tensor "
                    + "parallelism works with plain data parallelism (zero_stage = 0) and ZeRO-1 across the "
                    + "data-parallel ranks")
        }
        if sequence && rows % t != 0 {
            throw ParallelConfigError(
                "parallel.sequence = true: train.micro_batch_size × train.seq_length = \(rows) rows must be divisible "
                    + "by parallel.tensor = \(t)")
        }
    }

    /// Checks `pipeline` against the model's blocks, ZeRO and tied embeddings.
    private func validatePipeline(_ model: ModelConfig, seqLen: Int) throws(ParallelConfigError) {
        let p = pipeline
        _ = try stageShards(model, seqLen: seqLen)
        guard p > 1 else { return }
        if model.isMoE {
            throw ParallelConfigError(
                "a mixture of experts with parallel.pipeline = \(p) is refused: its load-balancing loss spans all "
                    + "layers; use parallel.pipeline = 1 and parallel.expert to split the experts")
        }
        if zeroStage.shardsGradients {
            throw ParallelConfigError(
                "parallel.zero_stage = \(zeroStage.rawValue) with parallel.pipeline = \(p) is refused: ZeRO-2 would "
                    + "reduce-scatter the gradients after every micro-batch's backward and ZeRO-3 gather every stage's "
                    + "parameters for every micro-batch in flight, multiplying the traffic by the micro-batches; use "
                    + "parallel.zero_stage = 0 or 1 (ZeRO-1 across the data-parallel ranks, as Megatron-DeepSpeed does)"
            )
        }
        if model.tieWordEmbeddings {
            throw ParallelConfigError(
                "model.tie_word_embeddings = true with parallel.pipeline = \(p) is refused: the tied embedding would "
                    + "have to live on the first stage and the head on the last; untie it or use parallel.pipeline = 1")
        }
    }

    /// The cut of `model`'s blocks into the pipeline stages, for sequences of `seqLen` tokens.
    public func pipelinePlan(_ model: ModelConfig, seqLen: Int) throws(ParallelConfigError) -> PipelinePlan {
        do {
            return try PipelinePlan(model, stages: pipeline, seqLen: seqLen)
        } catch {
            throw ParallelConfigError(error.description)
        }
    }

    /// The shard each pipeline stage's tensor (and expert) rank 0 holds, first stage first (every
    /// tensor or expert rank of a stage holds as many parameters).
    public func stageShards(_ model: ModelConfig, seqLen: Int) throws(ParallelConfigError) -> [ModelShard] {
        let plan = try pipelinePlan(model, seqLen: seqLen)
        return plan.stages.indices.map {
            var shard = plan.shard($0)
            shard.tensorSize = tensor
            shard.expertSize = model.isMoE ? expert : 1
            return shard
        }
    }
}

/// Composes `config` for this rank of `world`: checks the combination, lays the ranks out on a
/// `DeviceMesh`, forms the pipeline, tensor, data-parallel and ZeRO shard groups, builds the
/// rank's shard of `model` (its pipeline stage's blocks, its tensor slice), hands it to `prepare`
/// (initialise its weights there: ZeRO-3 then releases the pages outside this rank's partition),
/// and wraps it: tensor-parallel gradient sums, the ZeRO partition and data-parallel gradient
/// synchronisation of its stage, ZeRO-3's parameter gathers, the pipeline schedule.
/// Every rank must call it (the groups are split collectively).
public func parallelize(
    _ model: ModelConfig, world: any Communicator, hosts: [String]? = nil, config: ParallelConfig, batch: BatchShape,
    prepare: (LlamaModel) -> Void
) throws -> ParallelPlan {
    try config.validate(model, batch: batch)
    let mesh: DeviceMesh
    do {
        mesh = try DeviceMesh(world: world.size, tensor: config.tensor, pipeline: config.pipeline)
    } catch {
        throw ParallelConfigError(error.description)
    }
    let perRank = batch.micro * mesh.data
    if batch.global % perRank != 0 {
        throw ParallelConfigError(
            "train.global_batch_size = \(batch.global) must be a multiple of train.micro_batch_size × "
                + "data-parallel size = \(batch.micro) × \(mesh.data) = \(perRank)")
    }
    let groups = try RankGroups(
        world: world, mesh: mesh, shardGroupSize: config.shardGroupSize, expertSize: config.expert,
        zeroShards: config.zeroStage.shardsOptimizer, hosts: config.hierarchical ? hosts : nil)
    let stages = try config.pipelinePlan(model, seqLen: batch.seqLen)
    var shard = stages.shard(groups.pipeline?.rank ?? 0)
    shard.tensorRank = groups.tensor?.rank ?? 0
    shard.tensorSize = mesh.tensor
    shard.expertRank = groups.experts?.expert.rank ?? 0
    shard.expertSize = config.expert
    precondition(
        shard.tensorRank == mesh.coordinate(of: world.rank).tensor, "the tensor group's rank is the mesh coordinate")
    let llama = try LlamaModel(
        config: model, shard: shard,
        tensorParallel: groups.tensor.map { TensorParallelGroup(group: $0, sequenceParallel: config.sequence) },
        expertParallel: groups.experts.map { ExpertParallelGroup(group: $0.expert) },
        wholeGradients: !config.zeroStage.shardsGradients)
    prepare(llama)
    return ParallelPlan(
        config: config, mesh: mesh, groups: groups, stages: stages, model: llama,
        accumulationSteps: batch.global / perRank)
}

/// The communicators of one rank: every group it belongs to in the mesh.
struct RankGroups {
    let world: any Communicator
    /// The ranks holding the same model shard (`dp`; the world itself on one rank).
    let data: any Communicator
    /// The ranks splitting the same layers (`tp`), with tensor parallelism.
    let tensor: (any Communicator)?
    /// The stages of one pipeline (`pp`), with pipeline parallelism.
    let pipeline: (any Communicator)?
    /// The group ZeRO partitions over: the data-parallel group or, hybrid, a `shard` group of it.
    let shard: any Communicator
    /// With hybrid sharding, the ranks at this rank's position in every shard group (`replica`).
    let replica: (any Communicator)?
    /// With expert parallelism, the expert group (`ep`) and the ranks holding the same experts (`edp`).
    let experts: ExpertGroups?

    /// Splits `world` by `mesh`; with `shardGroupSize` k > 0 and below the data-parallel size,
    /// ZeRO shards over groups of k data-parallel ranks. Given the host of each rank (`hosts`), a
    /// data-parallel group that spans hosts with several ranks on each all-reduces in levels
    /// (`HierarchicalGroup`). With `expertSize` > 1 the experts split over groups of that many
    /// data-parallel ranks, and ZeRO (`zeroShards`) partitions over the ranks holding the same experts.
    init(
        world: any Communicator, mesh: DeviceMesh, shardGroupSize k: Int, expertSize: Int = 1, zeroShards: Bool = false,
        hosts: [String]?
    ) throws(ParallelConfigError) {
        func split(_ dimension: DeviceMesh.GroupKind, _ name: String) -> any Communicator {
            world.split(color: mesh.groupIndex(of: world.rank, dimension), key: world.rank, name: name)
        }
        self.world = world
        pipeline = mesh.pipeline > 1 ? split(.pipeline, "pp") : nil
        tensor = mesh.tensor > 1 ? split(.tensor, "tp") : nil
        let flat = world.size == 1 ? world : split(.data, "dp")
        let memberHosts = hosts.map { h in mesh.group(of: world.rank, .data).map { h[$0] } }
        data = memberHosts.flatMap { flat.size > 1 ? HierarchicalGroup.make(flat, hosts: $0) : nil } ?? flat
        experts = expertSize > 1 ? try ExpertGroups(world: world, mesh: mesh, size: expertSize) : nil
        if let experts, zeroShards {
            (shard, replica) = (experts.expertData, nil)
            return
        }
        guard k > 0, k < data.size else {
            (shard, replica) = (data, nil)
            return
        }
        let (shardGroup, replicaGroup) = try splitConsecutive(world, mesh, k, names: ("shard", "replica"))
        (shard, replica) = (shardGroup, replicaGroup)
    }
}
