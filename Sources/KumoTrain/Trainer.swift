import KumoCore
import KumoData
import KumoModel

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
}

/// Training stopped because a value became NaN or infinite.
public struct NonFiniteError: Error, CustomStringConvertible {
    public var step: Int
    public var loss: Double
    public var gradNorm: Double
    public var description: String {
        "step \(step): non-finite value (loss \(loss), grad norm \(gradNorm)); the run stopped before applying the update. "
            + "Lower optim.lr, raise optim.warmup_steps or check the data."
    }
}

/// Runs optimizer steps of a single-process training run.
public final class Trainer {
    public let config: RunConfig
    public let model: LlamaModel
    public let optimizer: AdamW
    /// Measured sgemm peak of the threads in use, GFLOP/s (the MFU denominator).
    public let peakGFLOPs: Double
    public let flopsPerToken: Double
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

    /// Checks memory, sets threads, initialises the model from the seed and measures the peak.
    public init(config: RunConfig, stream: TokenStream, peakGFLOPs: Double? = nil) throws {
        try MemoryEstimate(model: config.model, batch: config.microBatchSize, seqLen: config.seqLength).check()
        self.config = config
        self.stream = stream
        Threads.set(config.threads)
        model = try LlamaModel(config: config.model)
        model.initializeWeights(seed: config.seed, std: config.double("model.init_std"))
        optimizer = AdamW(layout: model.layout, settings: config.adam)
        spikeGuard = SpikeGuard(settings: try SpikeSettings(config))
        microBatches = (0..<config.accumulationSteps).map { _ in
            Batch(batch: config.microBatchSize, seqLen: config.seqLength)
        }
        self.peakGFLOPs = peakGFLOPs ?? SgemmPeak.measure()
        flopsPerToken = config.model.flopsPerToken(seqLen: config.seqLength)
    }

    /// Tokens consumed by one optimizer step.
    public var tokensPerStep: Int { config.globalBatchSize * config.seqLength }

    /// One optimizer step over the global batch (with gradient accumulation).
    public func trainStep() throws -> StepMetrics {
        let t0 = SystemInfo.now()
        let perStep = config.globalBatchSize
        for (i, mb) in microBatches.enumerated() {
            mb.load(from: stream, firstSample: dataPosition + i * config.microBatchSize)
        }
        let scored = microBatches.reduce(0) { $0 + $1.scoredTokens }
        model.zeroGrads()
        var lossSum = 0.0
        for mb in microBatches {
            mb.inputs.withUnsafeBufferPointer { inputs in
                mb.targets.withUnsafeBufferPointer { targets in
                    lossSum +=
                        model.lossAndBackward(
                            inputs: inputs.baseAddress!, targets: targets.baseAddress!, batch: mb.batch,
                            seqLen: mb.seqLen, gradScale: 1 / Float(max(scored, 1))
                        ).lossSum
                }
            }
        }
        var loss = lossSum / Double(max(scored, 1))
        if let factor = spikeGuard.settings.injections[dataPosition / perStep] {
            loss = SpikeGuard.inject(factor, loss: loss, grads: model.grads)
        }
        let lr = config.schedule.lr(at: step) * lrScale
        let gradNorm = AdamW.gradNorm(model.grads)
        let event = try spikeGuard.judge(step: step + 1, loss: loss, gradNorm: gradNorm)
        if event == nil { optimizer.update(params: model.params, grads: model.grads, lr: lr, gradNorm: gradNorm) }
        dataPosition += perStep
        step += 1
        let dt = SystemInfo.now() - t0
        let tps = Double(tokensPerStep) / dt
        return StepMetrics(
            step: step, loss: loss, lr: lr, gradNorm: gradNorm, tokensPerSecond: tps,
            mfu: tps * flopsPerToken / (peakGFLOPs * 1e9), stepSeconds: dt, elapsedSeconds: SystemInfo.now() - start,
            event: event)
    }
}
