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
    /// This rank's part of the job as `parallelize` composed it: its groups, the model's shard
    /// and the data-parallel, ZeRO, tensor-parallel and pipeline wrappers.
    public let plan: ParallelPlan
    /// Measured matrix-product peak of the precision in use (sgemm, or the bf16 GEMM) on the threads
    /// in use on all ranks together, GFLOP/s (the MFU denominator).
    public let peakGFLOPs: Double
    public let flopsPerToken: Double
    /// Micro-batches this rank accumulates per optimizer step.
    public var accumulationSteps: Int { plan.accumulationSteps }
    /// Every rank of the job.
    var world: any Communicator { plan.world }
    let stream: any SequenceSource
    let microBatches: [Batch]
    /// The DPO objective's loss, pairs, reference log-probabilities and metric sums (nil unless
    /// `train.objective = "dpo"`).
    let dpo: DPOState?
    private let start = SystemInfo.now()
    public internal(set) var step = 0
    /// Samples consumed from the stream: the data sampler's position (ahead of `step` × batch after
    /// a rollback skipped batches).
    public internal(set) var dataPosition = 0
    /// Factor on the scheduled learning rate (lowered by spike-guard rollbacks).
    public internal(set) var lrScale = 1.0
    /// The loss-spike guard of `[train.spike]`.
    public internal(set) var spikeGuard: SpikeGuard
    /// The current step's routing (a mixture of experts), nil for a dense model.
    private var routing: StepRouting?

    /// Checks memory, sets threads, composes the parallel layout of `config.parallel` over
    /// `world` (`parallelize`; `hosts`: the host of each rank, nil for one host), initialises the
    /// model from the seed (the same on every rank) or from `model.init` and measures the peak.
    public init(
        config: RunConfig, stream: any SequenceSource, world: any Communicator = LocalCommunicator(),
        hosts: [String]? = nil, peakGFLOPs: Double? = nil
    ) throws {
        try config.memory(ranks: world.size).check(
            ranksHere: hosts.map { h in h.filter { $0 == h[world.rank] }.count } ?? 1)
        self.config = config
        self.stream = stream
        Threads.set(config.threads)
        do {
            let initial = try InitialWeights(config)
            plan = try parallelize(
                config.model, world: world, hosts: hosts, config: config.parallel, batch: config.batchShape
            ) {
                $0.recompute = config.recompute
                $0.precision = config.precision
                initial.fill($0)
            }
        } catch let error as ParallelConfigError {
            throw ConfigError(error.description)
        }
        model = plan.model
        spikeGuard = SpikeGuard(settings: config.train.spike)
        microBatches = (0..<plan.accumulationSteps).map { _ in
            Batch(batch: config.microBatchSize * stream.rowsPerSample, seqLen: config.seqLength)
        }
        optimizer = AdamW(layout: model.layout, settings: config.adam, shard: plan.optimizerShard)
        dpo = try DPOState(config: config, stream: stream)
        var peak = [peakGFLOPs ?? (config.precision == .bf16 ? BF16GEMM.measure() : SgemmPeak.measure())]
        world.allReduce(&peak, op: .sum)
        self.peakGFLOPs = peak[0]
        flopsPerToken = config.model.flopsPerToken(seqLen: config.seqLength)
    }

    /// Tokens consumed by one optimizer step.
    public var tokensPerStep: Int { config.globalBatchSize * stream.rowsPerSample * config.seqLength }

    /// One optimizer step over the global batch (with gradient accumulation).
    public func trainStep() throws -> StepMetrics {
        let t0 = SystemInfo.now()
        world.noteStep(step + 1)
        let group = plan.dataGroup
        let pipeline = plan.pipeline
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
        plan.dataParallel.sharded?.beginStep()
        // DPO averages over the global batch's pairs, the other objectives over its scored tokens.
        let normalizer = dpo == nil ? max(scored, 1) : perStep
        let gradScale = 1 / Float(normalizer)
        // The router losses average over the step's passes: the gradients of the ranks add up.
        model.routerLossWeight = 1 / Float(microBatches.count * group.size)
        routing = config.model.isMoE ? StepRouting(config.model) : nil
        dpo?.sums = DPOSums()
        let lossSum =
            pipeline.map { runPipeline($0, gradScale: gradScale) }
            ?? runMicroBatches(firstSample: first, gradScale: gradScale)
        model.gradientsReady = nil
        plan.shardedParameters?.releaseAll()
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
        var loss = lossTotal[0] / Double(normalizer)
        let dpoMetrics = dpo.map { $0.metrics(group: group, pairs: perStep) } ?? [:]
        // Injected after the reduction, so every rank scales the same gradients.
        if let factor = spikeGuard.settings.injections[dataPosition / perStep] {
            loss = SpikeGuard.inject(factor, loss: loss, grads: plan.gradShard ?? model.grads)
        }
        let lr = config.schedule.lr(at: step) * lrScale
        let gradNorm = plan.gradNorm()
        let event = try spikeGuard.judge(step: step + 1, loss: loss, gradNorm: gradNorm)
        if event == nil {
            if let gradShard = plan.gradShard {
                optimizer.update(params: model.params, shardGrads: gradShard.pointer, lr: lr, gradNorm: gradNorm)
            } else {
                optimizer.update(params: model.params, grads: model.grads, lr: lr, gradNorm: gradNorm)
            }
            plan.parametersUpdated()
        }
        dataPosition += perStep
        step += 1
        let dt = SystemInfo.now() - t0
        let tps = Double(tokensPerStep) / dt
        let extra = stepMetricsExtra(seconds: dt, bubbleSeconds: bubbleSeconds).merging(dpoMetrics) { $1 }
            .merging(routing?.metrics(over: group) ?? [:]) { $1 }
        return StepMetrics(
            step: step, loss: loss, lr: lr, gradNorm: gradNorm, tokensPerSecond: tps,
            mfu: tps * flopsPerToken / (peakGFLOPs * 1e9), stepSeconds: dt, elapsedSeconds: SystemInfo.now() - start,
            event: event, extra: extra)
    }

    /// The memory, pipeline-bubble and communication keys of a step's metrics that took `seconds`.
    private func stepMetricsExtra(seconds dt: Double, bubbleSeconds: Double) -> [String: Double] {
        let dataParallel = plan.dataParallel
        var extra: [String: Double] = [
            "memory.params_bytes": Double(4 * plan.ownedParameters.count),
            "memory.grads_bytes": Double(4 * model.grads.count + (dataParallel.sharded?.allocatedBytes ?? 0)),
            "memory.optimizer_bytes": Double(optimizer.stateBytes),
            "memory.activations_bytes": Double(model.activationBytesAllocated),
            "memory.peak_rss_bytes": Double(SystemInfo.peakRSSBytes),
        ]
        if let sharded = dataParallel.sharded {
            // Of memory.grads_bytes: backward's scratch and the bucket staging buffers, beside the shard.
            extra["memory.grad_scratch_bytes"] = Double(sharded.scratchBytes)
        }
        if let shardedParameters = plan.shardedParameters {
            extra["memory.gathered_params_bytes"] = Double(shardedParameters.peakGatheredBytes)
        }
        if plan.pipeline != nil {
            extra["pipeline.bubble_seconds"] = bubbleSeconds
            extra["pipeline.bubble_fraction"] = bubbleSeconds / dt
        }
        if world.size > 1 {
            for c in plan.groups.map(\.counters) { for (k, v) in c.metrics { extra[k] = v } }
        }
        return extra
    }

    /// Runs forward and backward over the step's micro-batches on this rank's whole model;
    /// returns the summed loss (of tokens, or of DPO pairs). Whole gradients are communicated once
    /// per step, during the last micro-batch's backward; sharded ones during every micro-batch's
    /// (they accumulate in the shard).
    private func runMicroBatches(firstSample first: Int, gradScale: Float) -> Double {
        let dataParallel = plan.dataParallel
        var lossSum = 0.0
        for (i, mb) in microBatches.enumerated() {
            let last = i == microBatches.count - 1
            let communicates = last || dataParallel.reducesEveryMicroBatch
            if communicates {
                dataParallel.beginSync()
                model.gradientsReady = plan.gradientsReady
            }
            mb.inputs.withUnsafeBufferPointer { inputs in
                // The slot keeps its own copy of the positions.
                let logits = mb.positions.withUnsafeBufferPointer { positions in
                    model.forward(
                        tokens: inputs.baseAddress!, batch: mb.batch, seqLen: mb.seqLen,
                        positions: mb.resetsPositions ? positions.baseAddress! : nil)
                }
                if let statistics = model.routerStatistics() { routing?.add(statistics) }
                if let dpo {
                    lossSum += dpoGradient(
                        dpo, mb, firstSample: first + i * config.microBatchSize, logits: logits, gradScale: gradScale)
                } else {
                    lossSum += mb.targets.withUnsafeBufferPointer { targets in
                        model.lossGradient(
                            logits: logits, targets: targets.baseAddress!, rows: mb.batch * mb.seqLen,
                            gradScale: gradScale
                        ).lossSum
                    }
                }
                model.backward(tokens: inputs.baseAddress!)
            }
            if communicates { dataParallel.finishSync(lastOfStep: last) }
        }
        return lossSum
    }

    /// Runs this rank's pipeline stage over the step's micro-batches; returns the summed loss
    /// (the last stage's; 0 on the others). Gradients are synchronised over the data-parallel
    /// group during the last micro-batch's backward, the last backward on every stage.
    private func runPipeline(_ pipeline: PipelineRunner, gradScale: Float) -> Double {
        precondition(
            !plan.dataParallel.reducesEveryMicroBatch, "ZeRO-2/3 with pipeline parallelism is refused at start")
        let rows = config.microBatchSize * config.seqLength
        let inputs = microBatches.flatMap(\.inputs)
        let targets = microBatches.flatMap(\.targets)
        let positions = microBatches.flatMap(\.positions)
        let resets = microBatches.map(\.resetsPositions)
        let last = microBatches.count - 1
        var lossSum = 0.0
        inputs.withUnsafeBufferPointer { inputs in
            targets.withUnsafeBufferPointer { targets in
                positions.withUnsafeBufferPointer { positions in
                    pipeline.run(
                        microBatches: microBatches.count, batch: config.microBatchSize, seqLen: config.seqLength,
                        tokens: { inputs.baseAddress! + $0 * rows },
                        positions: { resets[$0] ? positions.baseAddress! + $0 * rows : nil },
                        loss: { i, logits in
                            lossSum +=
                                model.lossGradient(
                                    logits: logits, targets: targets.baseAddress! + i * rows, rows: rows,
                                    gradScale: gradScale
                                ).lossSum
                        },
                        willBackward: { i in
                            guard i == last else { return }
                            plan.dataParallel.beginSync()
                            model.gradientsReady = plan.gradientsReady
                        },
                        didBackward: { i in if i == last { plan.dataParallel.finishSync(lastOfStep: true) } })
                }
            }
        }
        return lossSum
    }

    /// Whether `gatherParameters` has run: every rank then holds the whole buffer.
    public private(set) var parametersGathered = false

    /// ZeRO-3: gathers the whole parameter buffer onto every rank and detaches the per-stage
    /// gathers, so the replica check, parameter dumps and samples (on rank 0 alone) read it.
    public func gatherParameters() {
        guard plan.shardedParameters != nil else { return }
        parametersGathered = true
        plan.gatherParameters()
    }

    /// Checks that every data-parallel rank (under expert parallelism: every rank holding the same
    /// experts) holds bit-identical parameters (replicas must not drift apart); throws naming the
    /// first rank that differs from the group's first.
    public func checkReplicasAgree() throws {
        let group = plan.expertDataGroup ?? plan.dataGroup
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
