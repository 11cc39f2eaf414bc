import KumoComm
import KumoCore
import KumoData
import KumoModel
import KumoParallel

/// What one optimizer step measured (a line of metrics.jsonl).
public struct StepMetrics: Sendable, Equatable {
    /// 1-based step number after the update.
    public var step: Int
    public var loss: Double
    public var lr: Double
    public var gradNorm: Double
    public var tokensPerSecond: Double
    public var mfu: Double
    public var stepSeconds: Double
    public var elapsedSeconds: Double
    /// Set when the spike guard rejected the step (its update was not applied).
    public var event: SpikeEvent? = nil
    /// Further metrics.jsonl keys: this rank's memory (`memory.params_bytes`, `memory.grads_bytes`,
    /// `memory.optimizer_bytes`, `memory.activations_bytes` allocated by the model's forward, the process's
    /// `memory.peak_rss_bytes`) and, where there are several ranks, cumulative communication
    /// counters (`comm.<group>.<op>.calls|bytes|seconds`).
    public var extra: [String: Double] = [:]
}

/// Training stopped because a value became NaN or infinite.
public struct NonFiniteError: UserFacingError {
    public var step: Int
    public var loss: Double
    public var gradNorm: Double
    public var description: String {
        "step \(step): non-finite value (loss \(loss), grad norm \(gradNorm)); the run stopped before applying the update. "
            + "Lower optim.lr, raise optim.warmup_steps or check the data."
    }
}

/// Runs optimizer steps on one rank of a training job: the whole job's global batch is split
/// across the data-parallel group, whose gradients are all-reduced in buckets during backward.
/// With pipeline parallelism the rank holds one stage of the model and runs the micro-batches
/// through the pipeline group in the order of `parallel.schedule`.
public final class Trainer {
    public let config: RunConfig
    public let model: LlamaModel
    public let optimizer: AdamW
    /// The rank layout of `[parallel]` over the world.
    public let mesh: DeviceMesh
    /// Gradient synchronisation over the data-parallel group.
    public let dataParallel: DataParallel
    /// With `parallel.tensor` > 1: the replicated pieces' gradient sums and the norm over the tensor group.
    public let tensorGradients: TensorParallelGradients?
    /// The optimizer-state partition over the data-parallel group (one shard unless `parallel.zero_stage` >= 1).
    public let zero: ZeROPartition
    /// ZeRO-2 and 3: the summed gradients of this rank's shard, the only ones it keeps (nil below stage 2).
    public var gradShard: FloatBuffer? { dataParallel.sharded?.shard }
    /// The group ZeRO shards over: the data-parallel group, or with `parallel.shard_group_size`
    /// its groups of that many consecutive ranks.
    public let shardGroup: any Communicator
    /// With hybrid sharding, the ranks at this rank's position in every shard group.
    public let replicaGroup: (any Communicator)?
    /// ZeRO-3: the parameters, gathered stage by stage (nil below stage 3).
    public let shardedParameters: ShardedParameters?
    /// With `parallel.pipeline` > 1: this rank's stage and its schedule over the pipeline group.
    public let pipeline: PipelineRunner?
    /// The blocks of each pipeline stage (one stage of all blocks without pipeline parallelism).
    public let pipelinePlan: PipelinePlan
    /// Measured matrix-product peak of the precision in use (sgemm, or the bf16 GEMM) on the threads
    /// in use on all ranks together, GFLOP/s (the MFU denominator).
    public let peakGFLOPs: Double
    public let flopsPerToken: Double
    /// Micro-batches this rank accumulates per optimizer step.
    public let accumulationSteps: Int
    /// Every rank of the job.
    let world: any Communicator
    private let stream: TokenStream
    private let microBatches: [Batch]
    private let start = SystemInfo.now()
    public internal(set) var step = 0
    /// Samples consumed from the stream: the data sampler's position (ahead of `step` × batch after
    /// a rollback skipped batches).
    public internal(set) var dataPosition = 0
    /// Factor on the scheduled learning rate (lowered by spike-guard rollbacks).
    public internal(set) var lrScale = 1.0
    /// The loss-spike guard of `[train.spike]`.
    public internal(set) var spikeGuard: SpikeGuard

    /// Checks memory and the mesh, sets threads, initialises the model from the seed (the same
    /// on every rank), forms the data-parallel group and measures the peak.
    public init(
        config: RunConfig, stream: TokenStream, world: any Communicator = LocalCommunicator(), peakGFLOPs: Double? = nil
    ) throws {
        try MemoryEstimate(config).check()
        do {
            mesh = try DeviceMesh(
                world: world.size, tensor: config.int("parallel.tensor"), pipeline: config.int("parallel.pipeline"))
        } catch {
            throw ConfigError(error.description)
        }
        let perRank = config.microBatchSize * mesh.data
        if config.globalBatchSize % perRank != 0 {
            throw ConfigError(
                "train.global_batch_size = \(config.globalBatchSize) must be a multiple of train.micro_batch_size × "
                    + "data-parallel size = \(config.microBatchSize) × \(mesh.data) = \(perRank)")
        }
        accumulationSteps = config.globalBatchSize / perRank
        self.config = config
        self.stream = stream
        self.world = world
        Threads.set(config.threads)
        let stage = config.int("parallel.zero_stage")
        do {
            pipelinePlan = try PipelinePlan(config.model, stages: mesh.pipeline, seqLen: config.seqLength)
        } catch {
            throw ConfigError(error.description)
        }
        let pipelineGroup =
            mesh.pipeline == 1
            ? nil : world.split(color: mesh.groupIndex(of: world.rank, .pipeline), key: world.rank, name: "pp")
        let tensorGroup =
            mesh.tensor > 1
            ? world.split(color: mesh.groupIndex(of: world.rank, .tensor), key: world.rank, name: "tp") : nil
        var modelShard = pipelinePlan.shard(pipelineGroup?.rank ?? 0)
        modelShard.tensorRank = mesh.coordinate(of: world.rank).tensor
        modelShard.tensorSize = mesh.tensor
        let model = try LlamaModel(
            config: config.model, shard: modelShard,
            tensorParallel: tensorGroup.map {
                TensorParallelGroup(group: $0, sequenceParallel: config.bool("parallel.sequence"))
            }, wholeGradients: stage < 2)
        self.model = model
        pipeline = pipelineGroup.map {
            PipelineRunner(
                model: model, group: $0, schedule: PipelineSchedule(rawValue: config.string("parallel.schedule"))!)
        }
        model.recompute = config.recompute
        model.precision = config.precision
        let layout = model.layout
        tensorGradients = tensorGroup.map {
            TensorParallelGradients(layout: layout, group: $0, sequenceParallel: config.bool("parallel.sequence"))
        }
        model.initializeWeights(seed: config.seed, std: config.modelSection.initStd)
        spikeGuard = SpikeGuard(settings: config.train.spike)
        microBatches = (0..<accumulationSteps).map { _ in
            Batch(batch: config.microBatchSize, seqLen: config.seqLength)
        }
        let group =
            world.size == 1
            ? world : world.split(color: mesh.groupIndex(of: world.rank, .data), key: world.rank, name: "dp")
        (shardGroup, replicaGroup) = try Self.shardGroups(
            world: world, mesh: mesh, dataGroup: group, size: config.int("parallel.shard_group_size"))
        zero = ZeROPartition(count: model.layout.count, ranks: stage >= 1 ? shardGroup.size : 1)
        let shard = zero.range(of: zero.ranks > 1 ? shardGroup.rank : 0)
        optimizer = AdamW(layout: model.layout, settings: config.adam, shard: shard)
        let bucketBytes = Int(config.double("parallel.bucket_mib") * 1_048_576)
        if stage >= 2 {
            let sharded = ShardedGradients(
                layout: model.layout, partition: zero, group: shardGroup, replicas: replicaGroup,
                bucketBytes: bucketBytes)
            model.gradientMemory = sharded.memory
            dataParallel = DataParallel(sharded: sharded, group: group)
        } else {
            dataParallel = DataParallel(
                layout: model.layout, grads: model.grads, group: group, bucketBytes: bucketBytes)
        }
        if stage == 3 {
            let sharded = ShardedParameters(
                layout: model.layout, params: model.params, group: shardGroup, partition: zero,
                codec: GatherCodec(rawValue: config.string("parallel.quantized_allgather")) ?? .fp32)
            model.beforeForward = sharded.beforeForward
            model.beforeBackward = sharded.beforeBackward
            shardedParameters = sharded
        } else {
            shardedParameters = nil
        }
        var peak = [peakGFLOPs ?? (config.precision == .bf16 ? BF16GEMM.measure() : SgemmPeak.measure())]
        world.allReduce(&peak, op: .sum)
        self.peakGFLOPs = peak[0]
        flopsPerToken = config.model.flopsPerToken(seqLen: config.seqLength)
    }

    /// Tokens consumed by one optimizer step.
    public var tokensPerStep: Int { config.globalBatchSize * config.seqLength }

    /// One optimizer step over the global batch (with gradient accumulation).
    public func trainStep() throws -> StepMetrics {
        let t0 = SystemInfo.now()
        world.noteStep(step + 1)
        let group = dataParallel.group
        let perStep = config.globalBatchSize
        // This rank's contiguous slice of the global batch: the samples a one-rank run would see, split.
        let first = dataPosition + group.rank * perStep / group.size
        for (i, mb) in microBatches.enumerated() {
            try mb.load(from: stream, firstSample: first + i * config.microBatchSize)
        }
        var scoredTotal = [Double(microBatches.reduce(0) { $0 + $1.scoredTokens })]
        group.allReduce(&scoredTotal, op: .sum)
        let scored = Int(scoredTotal[0])
        model.zeroGrads()
        dataParallel.sharded?.beginStep()
        var lossSum = 0.0
        if let pipeline {
            precondition(!dataParallel.reducesEveryMicroBatch, "ZeRO-2/3 with pipeline parallelism is refused at start")
            lossSum = runPipeline(pipeline, gradScale: 1 / Float(max(scored, 1)))
        }
        for (i, mb) in microBatches.enumerated() where pipeline == nil {
            let last = i == microBatches.count - 1
            // Whole gradients are communicated once per step, during the last micro-batch's
            // backward; sharded ones during every micro-batch's (they accumulate in the shard).
            let communicates = last || dataParallel.reducesEveryMicroBatch
            if communicates {
                dataParallel.beginSync()
                model.gradientsReady = gradientsReady
            }
            mb.inputs.withUnsafeBufferPointer { inputs in
                mb.targets.withUnsafeBufferPointer { targets in
                    lossSum +=
                        model.lossAndBackward(
                            inputs: inputs.baseAddress!, targets: targets.baseAddress!, batch: mb.batch,
                            seqLen: mb.seqLen, gradScale: 1 / Float(max(scored, 1))
                        ).lossSum
                }
            }
            if communicates { dataParallel.finishSync(lastOfStep: last) }
        }
        model.gradientsReady = nil
        shardedParameters?.releaseAll()
        var lossTotal = [lossSum]
        var bubbleSeconds = 0.0
        if let pipeline {
            // The last stage holds the loss; the bubble is averaged over the stages.
            var shared = [lossSum, pipeline.bubbleSeconds]
            pipeline.group.allReduce(&shared, op: .sum)
            lossTotal = [shared[0]]
            bubbleSeconds = shared[1] / Double(pipeline.group.size)
        }
        group.allReduce(&lossTotal, op: .sum)
        var loss = lossTotal[0] / Double(max(scored, 1))
        // Injected after the reduction, so every rank scales the same gradients.
        if let factor = spikeGuard.settings.injections[dataPosition / perStep] {
            loss = SpikeGuard.inject(factor, loss: loss, grads: gradShard ?? model.grads)
        }
        let lr = config.schedule.lr(at: step) * lrScale
        let gradNorm = globalGradNorm()
        let event = try spikeGuard.judge(step: step + 1, loss: loss, gradNorm: gradNorm)
        if event == nil {
            if let gradShard {
                optimizer.update(params: model.params, shardGrads: gradShard.pointer, lr: lr, gradNorm: gradNorm)
            } else {
                optimizer.update(params: model.params, grads: model.grads, lr: lr, gradNorm: gradNorm)
            }
            if zero.ranks > 1 && shardedParameters == nil {
                // ZeRO-1/2: each rank updated its shard; every rank needs all of them for the next forward.
                shardGroup.allGatherInPlace(model.params.pointer, counts: zero.counts)
            }
        }
        dataPosition += perStep
        step += 1
        let dt = SystemInfo.now() - t0
        let tps = Double(tokensPerStep) / dt
        var extra: [String: Double] = [
            "memory.params_bytes": Double(4 * (shardedParameters == nil ? model.params.count : optimizer.shard.count)),
            "memory.grads_bytes": Double(4 * model.grads.count + (dataParallel.sharded?.allocatedBytes ?? 0)),
            "memory.optimizer_bytes": Double(optimizer.stateBytes),
            "memory.activations_bytes": Double(model.activationBytesAllocated),
            "memory.peak_rss_bytes": Double(SystemInfo.peakRSSBytes),
        ]
        if let sharded = dataParallel.sharded {
            // Of memory.grads_bytes: backward's scratch and the bucket staging buffers, beside the shard.
            extra["memory.grad_scratch_bytes"] = Double(sharded.scratchBytes)
        }
        if let shardedParameters {
            extra["memory.gathered_params_bytes"] = Double(shardedParameters.peakGatheredBytes)
        }
        if pipeline != nil {
            extra["pipeline.bubble_seconds"] = bubbleSeconds
            extra["pipeline.bubble_fraction"] = bubbleSeconds / dt
        }
        if world.size > 1 {
            let groups =
                [world, group, shardGroup] + (replicaGroup.map { [$0] } ?? []) + (pipeline.map { [$0.group] } ?? [])
                + (tensorGradients?.groups ?? [])
            for c in groups.map(\.counters) { for (k, v) in c.metrics { extra[k] = v } }
        }
        return StepMetrics(
            step: step, loss: loss, lr: lr, gradNorm: gradNorm, tokensPerSecond: tps,
            mfu: tps * flopsPerToken / (peakGFLOPs * 1e9), stepSeconds: dt, elapsedSeconds: SystemInfo.now() - start,
            event: event, extra: extra)
    }

    /// Runs this rank's pipeline stage over the step's micro-batches; returns the summed loss
    /// (the last stage's; 0 on the others). Gradients are synchronised over the data-parallel
    /// group during the last micro-batch's backward, the last backward on every stage.
    private func runPipeline(_ pipeline: PipelineRunner, gradScale: Float) -> Double {
        let rows = config.microBatchSize * config.seqLength
        let inputs = microBatches.flatMap(\.inputs)
        let targets = microBatches.flatMap(\.targets)
        let last = microBatches.count - 1
        var lossSum = 0.0
        inputs.withUnsafeBufferPointer { inputs in
            targets.withUnsafeBufferPointer { targets in
                pipeline.run(
                    microBatches: microBatches.count, batch: config.microBatchSize, seqLen: config.seqLength,
                    tokens: { inputs.baseAddress! + $0 * rows },
                    loss: { i, logits in
                        lossSum +=
                            model.lossGradient(
                                logits: logits, targets: targets.baseAddress! + i * rows, rows: rows,
                                gradScale: gradScale
                            ).lossSum
                    },
                    willBackward: { i in
                        guard i == last else { return }
                        dataParallel.beginSync()
                        model.gradientsReady = gradientsReady
                    },
                    didBackward: { i in if i == last { dataParallel.finishSync(lastOfStep: true) } })
            }
        }
        return lossSum
    }

    /// The L2 norm of the whole job's summed gradients: with sharded gradients (ZeRO-2) the
    /// squared norms of the shards are summed over the group, with pipeline stages those of the stages.
    private func globalGradNorm() -> Double {
        if tensorGradients != nil || pipeline != nil {
            // Each stage's squares (each replicated tensor-parallel piece counted once), summed over the stages.
            var squares = [
                tensorGradients?.sumOfSquares(model.grads.pointer)
                    ?? AdamWKernel.sumOfSquares(model.grads.pointer, count: model.grads.count)
            ]
            pipeline?.group.allReduce(&squares, op: .sum)
            return squares[0].squareRoot()
        }
        guard let gradShard else { return AdamW.gradNorm(model.grads) }
        var squares = [AdamWKernel.sumOfSquares(gradShard.pointer, count: gradShard.count)]
        shardGroup.allReduce(&squares, op: .sum)
        return squares[0].squareRoot()
    }

    /// Where backward reports gradients final: replicated tensor-parallel pieces are summed over
    /// their ranks, then data parallelism reduces the range.
    private func gradientsReady(_ range: Range<Int>) {
        tensorGradients?.gradientsReady(range, grads: model.grads.pointer)
        dataParallel.gradientsReady(range)
    }

    /// The range of this rank's flat buffer whose parameters it keeps between steps: its ZeRO-3
    /// partition, else all of it.
    var ownedParameters: Range<Int> { shardedParameters == nil ? 0..<model.layout.count : optimizer.shard }

    /// Whether `gatherParameters` has run: every rank then holds the whole buffer.
    public private(set) var parametersGathered = false

    /// ZeRO-3: gathers the whole parameter buffer onto every rank and detaches the per-stage
    /// gathers, so the replica check, parameter dumps and samples (on rank 0 alone) read it.
    public func gatherParameters() {
        guard let shardedParameters else { return }
        parametersGathered = true
        shardedParameters.gatherAll()
        model.beforeForward = nil
        model.beforeBackward = nil
    }

    /// The shard and replica groups of hybrid sharding (`parallel.shard_group_size` = k > 0 and
    /// below the data-parallel size), else the data-parallel group and none.
    private static func shardGroups(world: any Communicator, mesh: DeviceMesh, dataGroup: any Communicator, size: Int)
        throws -> (any Communicator, (any Communicator)?)
    {
        guard size > 0, size < dataGroup.size else { return (dataGroup, nil) }
        do {
            let colors = try mesh.hybridGroups(of: world.rank, shardSize: size)
            return (
                world.split(color: colors.shard, key: world.rank, name: "shard"),
                world.split(color: colors.replica, key: world.rank, name: "replica")
            )
        } catch {
            throw ConfigError(error.description)
        }
    }

    /// Checks that every data-parallel rank holds bit-identical parameters (replicas must not
    /// drift apart); throws naming the first rank that differs from rank 0.
    public func checkReplicasAgree() throws {
        let group = dataParallel.group
        guard group.size > 1 else { return }
        let hash = UnsafeRawBufferPointer(start: model.params.pointer, count: 4 * model.params.count)
        let all = group.allGatherBytes(withUnsafeBytes(of: RankAgreement.fnv1a(hash)) { Array($0) })
        if let bad = all.firstIndex(where: { $0 != all[0] }) {
            throw ConfigError(
                "after step \(step) the parameters of data-parallel rank \(bad) differ from rank 0's: the replicas "
                    + "drifted apart; this is a bug in Kumo, please report it with the config")
        }
    }
}
