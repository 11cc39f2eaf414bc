import KumoComm
import KumoCore
import KumoModel

/// One rank's part of a parallel training job, as `parallelize` composed it: the mesh and the
/// rank's groups, its model shard with the hooks installed, and the wrappers a training step
/// drives (gradient synchronisation, ZeRO's partitions, the pipeline schedule).
public final class ParallelPlan {
    /// The settings it was composed from.
    public let config: ParallelConfig
    /// The rank layout over the world.
    public let mesh: DeviceMesh
    /// Every rank of the job.
    public let world: any Communicator
    /// The ranks holding the same model shard.
    public let dataGroup: any Communicator
    /// The group ZeRO partitions over: the data-parallel group, or with `shardGroupSize` its
    /// groups of that many consecutive ranks.
    public let shardGroup: any Communicator
    /// With hybrid sharding, the ranks at this rank's position in every shard group.
    public let replicaGroup: (any Communicator)?
    /// With expert parallelism: the ranks splitting the experts, and those holding the same experts
    /// (over which the experts' gradients are summed and ZeRO partitions; every parameter is the
    /// same on its ranks).
    public let expertGroup: (any Communicator)?
    public let expertDataGroup: (any Communicator)?
    /// The blocks of each pipeline stage (one stage of all blocks without pipeline parallelism).
    public let stages: PipelinePlan
    /// This rank's shard of the model.
    public let model: LlamaModel
    /// Micro-batches this rank runs per optimizer step.
    public let accumulationSteps: Int
    /// Gradient synchronisation over the data-parallel group (whole or, ZeRO-2 and 3, sharded).
    public let dataParallel: DataParallel
    /// With tensor parallelism: the replicated pieces' gradient sums and the norm over the tensor group.
    public let tensorGradients: TensorParallelGradients?
    /// The optimizer-state partition over the shard group (one shard below ZeRO-1).
    public let zero: ZeROPartition
    /// ZeRO-3: the parameters, gathered stage by stage.
    public let shardedParameters: ShardedParameters?
    /// With pipeline parallelism: this rank's stage and its schedule over the pipeline group.
    public let pipeline: PipelineRunner?

    /// Wraps `model` (already initialised) for `config` over `groups`.
    init(
        config: ParallelConfig, mesh: DeviceMesh, groups: RankGroups, stages: PipelinePlan, model: LlamaModel,
        accumulationSteps: Int
    ) {
        self.config = config
        self.mesh = mesh
        world = groups.world
        dataGroup = groups.data
        shardGroup = groups.shard
        replicaGroup = groups.replica
        expertGroup = groups.experts?.expert
        expertDataGroup = groups.experts?.expertData
        self.stages = stages
        self.model = model
        self.accumulationSteps = accumulationSteps
        let layout = model.layout
        tensorGradients = groups.tensor.map {
            TensorParallelGradients(layout: layout, group: $0, sequenceParallel: config.sequence)
        }
        zero = ZeROPartition(count: layout.count, ranks: config.zeroStage.shardsOptimizer ? shardGroup.size : 1)
        if config.zeroStage.shardsGradients {
            let sharded = ShardedGradients(
                layout: layout, partition: zero, group: shardGroup, replicas: replicaGroup,
                bucketBytes: config.bucketBytes)
            model.gradientMemory = sharded.memory
            dataParallel = DataParallel(sharded: sharded, group: dataGroup)
        } else {
            dataParallel = DataParallel(
                layout: layout, grads: model.grads, group: dataGroup, expertData: expertDataGroup,
                bucketBytes: config.bucketBytes)
        }
        shardedParameters =
            config.zeroStage.shardsParameters
            ? ShardedParameters(
                layout: layout, params: model.params, group: shardGroup, partition: zero,
                codec: config.quantizedAllGather) : nil
        model.beforeForward = shardedParameters?.beforeForward
        model.beforeBackward = shardedParameters?.beforeBackward
        pipeline = groups.pipeline.map { PipelineRunner(model: model, group: $0, schedule: config.schedule) }
    }

    /// The range of the flat buffer whose optimizer state this rank keeps (all of it below ZeRO-1).
    public var optimizerShard: Range<Int> { zero.range(of: zero.ranks > 1 ? shardGroup.rank : 0) }

    /// The range of the flat buffer whose parameters this rank keeps between steps: its ZeRO-3
    /// partition, else all of it.
    public var ownedParameters: Range<Int> { shardedParameters == nil ? 0..<model.layout.count : optimizerShard }

    /// ZeRO-2 and 3: the summed gradients of this rank's shard, the only ones it keeps (nil below).
    public var gradShard: FloatBuffer? { dataParallel.sharded?.shard }

    /// Where backward reports gradients final: replicated tensor-parallel pieces are summed over
    /// their ranks, then data parallelism reduces the range.
    public func gradientsReady(_ range: Range<Int>) {
        tensorGradients?.gradientsReady(range, grads: model.grads.pointer)
        dataParallel.gradientsReady(range)
    }

    /// The L2 norm of the whole job's summed gradients: with tensor or pipeline parallelism the
    /// stages' squares (each replicated tensor piece counted once) summed over the pipeline, with
    /// sharded gradients (ZeRO-2 and 3) the shards' squares summed over the shard group.
    public func gradNorm() -> Double {
        let grads = model.grads
        if let expertGroup {
            // The other tensors' gradients are the same on the expert group; each rank adds its experts'.
            let local = model.layout.expertRanges.reduce(0) {
                $0 + AdamWKernel.sumOfSquares(grads.pointer + $1.lowerBound, count: $1.count)
            }
            var experts = [local]
            expertGroup.allReduce(&experts, op: .sum)
            return (max(AdamWKernel.sumOfSquares(grads.pointer, count: grads.count) - local, 0) + experts[0])
                .squareRoot()
        }
        if tensorGradients != nil || pipeline != nil {
            var squares = [
                tensorGradients?.sumOfSquares(grads.pointer)
                    ?? AdamWKernel.sumOfSquares(grads.pointer, count: grads.count)
            ]
            pipeline?.group.allReduce(&squares, op: .sum)
            return squares[0].squareRoot()
        }
        guard let gradShard else { return AdamWKernel.sumOfSquares(grads.pointer, count: grads.count).squareRoot() }
        var squares = [AdamWKernel.sumOfSquares(gradShard.pointer, count: gradShard.count)]
        shardGroup.allReduce(&squares, op: .sum)
        return squares[0].squareRoot()
    }

    /// After the optimizer updated this rank's shard: ZeRO-1 and 2 gather every shard onto every
    /// rank for the next forward (ZeRO-3 gathers stage by stage instead).
    public func parametersUpdated() {
        if zero.ranks > 1 && shardedParameters == nil {
            shardGroup.allGatherInPlace(model.params.pointer, counts: zero.counts)
        }
    }

    /// Whether this rank writes its parameters to a checkpoint: data replicated over the
    /// data-parallel group (below ZeRO-3) is written by its first rank only, ZeRO-3 partitions
    /// with hybrid sharding by the first shard group only.
    public var writesParameters: Bool { shardedParameters == nil ? isFirstDataRank : isFirstReplica }

    /// Whether this rank writes its AdamW moments: without ZeRO by the first data-parallel rank,
    /// with it by the first shard group.
    public var writesOptimizerState: Bool { zero.ranks > 1 ? isFirstReplica : isFirstDataRank }

    private var isFirstReplica: Bool { (replicaGroup?.rank ?? 0) == 0 }
    /// The first of the ranks holding the same parameters: the first data-parallel rank, or under
    /// expert parallelism each rank of the first expert group (which writes its experts, and its
    /// first rank the other tensors).
    private var isFirstDataRank: Bool {
        expertDataGroup.map { $0.rank == 0 } ?? (mesh.coordinate(of: world.rank).data == 0)
    }

    /// Every group this rank communicates over, whose counters belong in the metrics.
    public var groups: [any Communicator] {
        [world, dataGroup, shardGroup] + (replicaGroup.map { [$0] } ?? []) + (pipeline.map { [$0.group] } ?? [])
            + [expertGroup, expertDataGroup].compactMap { $0 }
            + (tensorGradients?.groups ?? []) + ((dataGroup as? HierarchicalGroup)?.levels ?? [])
    }

    /// ZeRO-3: gathers the whole parameter buffer onto every rank and detaches the per-stage
    /// gathers, so that every rank holds all of it from then on.
    public func gatherParameters() {
        guard let shardedParameters else { return }
        shardedParameters.gatherAll()
        model.beforeForward = nil
        model.beforeBackward = nil
    }
}
