import ArgumentParser
import Foundation
import KumoComm
import KumoCore
import KumoData
import KumoInterop
import KumoModel
import KumoTrain

/// `kumo train`: trains a model and writes a run directory.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Train a model from a TOML config; writes config.toml, metrics.jsonl and train.log to the run directory.")

    @OptionGroup var options: ConfigOptions

    @Option(
        help:
            "Run directory (default: runs/run-<UTC time>; with --resume PATH, the run that holds PATH); written by rank 0 only."
    )
    var runDir: String?

    @Option(
        help: ArgumentHelp(
            "Continue from 'latest' (the newest valid checkpoint of --run-dir) or a checkpoint directory.",
            discussion: "Without --config the run directory's config.toml is used.", valueName: "latest|PATH"))
    var resume: String?

    @Option(help: "After training, write the flat fp32 parameter buffer (little-endian) to this file (rank 0).")
    var dumpParams: String?

    func run() throws {
        do {
            try train()
        } catch let error as NonFiniteError {
            throw ValidationFailure(error.description)
        } catch let error as SpikeGuardError {
            throw ValidationFailure(error.description)
        } catch let error as CheckpointError {
            throw ValidationFailure(error.description)
        } catch let error as ConfigError {
            throw ValidationFailure(error.description)
        } catch let error as CorpusError {
            throw ValidationFailure(error.description)
        } catch let error as DatasetError {
            throw ValidationFailure(error.description)
        } catch let error as TokenizerError {
            throw ValidationFailure(error.description)
        } catch let error as IndexedDatasetError {
            throw ValidationFailure(error.description)
        }
    }

    private func train() throws {
        let path = try runDirectory()
        let config = try RunConfig.load(
            path: options.config ?? (resume == nil ? nil : path + "/config.toml"), overrides: options.overrides)
        let world = CommWorld.start(timeoutSeconds: config.double("parallel.comm_timeout_s"))
        if world.size > 1 {
            printErr(
                "kumo: rank \(world.rank) of \(world.size), pid \(getpid()), host \(ProcessInfo.processInfo.hostName)")
        }
        // Every rank reaches the same verdict here (the hashes are all-gathered, then the configs are
        // equal), so a refusal ends MPI on all of them cleanly: mpirun then forwards every rank's message
        // instead of tearing the job down at the first non-zero exit.
        do {
            try RankAgreement.check(world: world, config: config)
        } catch {
            CommWorld.finish(world)
            throw error
        }
        let data = try TrainingData.make(config)
        let trainer = try Trainer(config: config, stream: data.stream, world: world)
        guard world.rank == 0 else {
            let session = TrainingSession(trainer: trainer, runDirectory: path, directory: nil, say: { _ in })
            try resumeOnEveryRank(session, world: world)
            try session.run(progress: { _ in })
            trainer.gatherParameters()
            try trainer.checkReplicasAgree()
            _ = try trainer.wholeModel()
            CommWorld.finish(world)
            return
        }
        let dir = try RunDirectory(path: path, config: config)
        if !data.sources.isEmpty { try dir.recordSources(data.sources) }
        let c = config.model
        let header = [
            "run directory \(dir.path)",
            "ranks: \(world.size) (data-parallel \(trainer.mesh.data), tensor \(trainer.mesh.tensor), "
                + "pipeline \(trainer.mesh.pipeline)); gradient buckets: \(trainer.dataParallel.buckets.ranges.count); "
                + "ZeRO stage \(config.int("parallel.zero_stage")): optimizer state "
                + String(format: "%.1f MiB per rank", Double(trainer.optimizer.stateBytes) / 1_048_576),
            "model: \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads "
                + "(\(c.numKeyValueHeads) KV), FFN \(c.intermediateSize), vocab \(c.vocabSize), "
                + "\(ParameterLayout(c).count) parameters"
                + (c.parallelLayers ? ", parallel layers" : "") + (c.tieWordEmbeddings ? ", tied embeddings" : ""),
            "pipeline: "
                + trainer.pipelinePlan.stages.map { "blocks \($0.lowerBound)..<\($0.upperBound)" }
                .joined(separator: " | ") + " (schedule \(config.string("parallel.schedule")))",
            "data: " + data.summary,
            "batch: \(config.globalBatchSize) × \(config.seqLength) tokens (micro-batch \(config.microBatchSize), "
                + "\(trainer.accumulationSteps) accumulation steps per rank), \(config.steps) steps, "
                + "\(config.threads) threads per rank",
            "memory: about \(MemoryEstimate(config)); activation recompute \(config.recompute.rawValue)",
            "precision: " + (config.precision == .bf16 ? "bf16; " + BF16GEMM.selection.reason : "fp32"),
            String(
                format: "measured %@ peak: %.1f GFLOP/s on %d threads × %d ranks",
                config.precision == .bf16 ? "bf16 GEMM" : "sgemm", trainer.peakGFLOPs, config.threads, world.size),
        ]
        for line in header {
            printErr(line)
            dir.note(line)
        }
        let session = TrainingSession(trainer: trainer, directory: dir, say: printErr)
        session.evaluate = try TrainingEval.make(config: config, dataTokenizer: data.tokenizer)
        try resumeOnEveryRank(session, world: world)
        let progress = ProgressLine(total: config.steps)
        do {
            try session.run(progress: progress.update)
        } catch {
            dir.note("stopped: \(error)")
            throw error
        }
        trainer.gatherParameters()
        try trainer.checkReplicasAgree()
        dir.note("finished \(config.steps) steps; the parameters of all \(trainer.mesh.data) data-parallel ranks agree")
        guard let model = try trainer.wholeModel() else { preconditionFailure("rank 0 gathers the whole model") }
        let weights = dir.path + "/model.safetensors"
        try KumoWeights.save(model, to: weights)
        for line in ["final weights: \(weights) (kumo eval, generate, serve and convert read it with --model)"] {
            printErr(line)
            dir.note(line)
        }
        if let dumpParams {
            let p = model.params
            try Data(bytes: p.pointer, count: 4 * p.count).write(to: URL(fileURLWithPath: dumpParams))
        }
        CommWorld.finish(world)
        printSamples(config: config, model: model, tokenizer: data.tokenizer, dir: dir)
    }

    /// Resumes when asked. Rank 0 decides which checkpoint and every rank gets the same verdict, so
    /// a refused checkpoint ends MPI on all of them cleanly, as the start-up refusals do.
    private func resumeOnEveryRank(_ session: TrainingSession, world: any Communicator) throws {
        guard let resume else { return }
        do {
            try session.resume(resume)
        } catch let error as CheckpointError {
            CommWorld.finish(world)
            throw error
        }
    }

    /// `--run-dir`, else for `--resume PATH` the run directory above `PATH/..`, else a new name.
    private func runDirectory() throws -> String {
        if let runDir { return runDir }
        guard let resume else { return RunDirectory.defaultPath() }
        guard resume != "latest" else { throw ValidationFailure("--resume latest needs --run-dir DIR") }
        return ((resume as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }

    private func printSamples(config: RunConfig, model: LlamaModel, tokenizer: (any Tokenizer)?, dir: RunDirectory) {
        let prompts = config.strings("log.samples")
        guard !prompts.isEmpty else { return }
        guard let tokenizer else {
            printErr("log.samples ignored: synthetic data has no text")
            return
        }
        print("Samples (temperature \(config.double("log.temperature"))):")
        for (i, prompt) in prompts.enumerated() {
            let out = model.generate(
                prompt: tokenizer.encode(prompt), maxNewTokens: config.int("log.sample_tokens"),
                temperature: config.double("log.temperature"), context: config.seqLength, seed: config.seed &+ UInt64(i)
            )
            let text = prompt + tokenizer.decode(out.prefix { $0 != tokenizer.eod })
            print("--- \(text)")
            dir.note("sample: \(text)")
        }
    }
}

/// Writes a line to standard error.
func printErr(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
