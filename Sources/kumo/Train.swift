import ArgumentParser
import Foundation
import KumoComm
import KumoCore
import KumoData
import KumoInference
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
        help: ArgumentHelp(
            "Run directory (default: a new runs/run-<UTC time>; with --resume PATH, the run that holds PATH).",
            discussion:
                "Written by rank 0 only, which locks it; one that is not empty is refused unless --resume or --overwrite."
        ))
    var runDir: String?

    @Option(
        help: ArgumentHelp(
            "Continue from 'latest' (the newest valid checkpoint of --run-dir) or a checkpoint directory.",
            discussion: "Without --config the run directory's config.toml is used.", valueName: "latest|PATH"))
    var resume: String?

    @Flag(help: "Delete the previous run's files in --run-dir first and start a new run there.")
    var overwrite = false

    @Option(help: "The experiment the run is filed under in the run registry (sets run.experiment).")
    var experiment: String?

    @Option(help: "After training, write the flat fp32 parameter buffer (little-endian) to this file (rank 0).")
    var dumpParams: String?

    @Flag(help: "Print every configuration key with its type, default and meaning, then exit.")
    var helpConfig = false

    func validate() throws {
        if overwrite && resume != nil { throw ValidationError("--overwrite starts a new run; it excludes --resume") }
        if overwrite && runDir == nil { throw ValidationError("--overwrite needs --run-dir DIR") }
    }

    func run() throws {
        if helpConfig {
            print(ConfigSchema.reference(), terminator: "")
            return
        }
        try train()
    }

    private func train() throws {
        let requested = try requestedRunDirectory()
        let experimentOverride = experiment.map {
            "run.experiment=\"" + $0.replacingOccurrences(of: "\"", with: "") + "\""
        }
        let config = try RunConfig.load(
            path: options.config ?? resume.flatMap { _ in requested.map { $0 + "/config.toml" } },
            overrides: options.overrides + (experimentOverride.map { [$0] } ?? []))
        let (world, topology) = CommWorld.startByHost(timeoutSeconds: config.parallel.commTimeoutSeconds)
        if world.size > 1 {
            let launched = topology.meshRanks.firstIndex(of: world.rank) ?? world.rank
            printErr(
                "kumo: rank \(world.rank) of \(world.size)"
                    + (launched == world.rank ? "" : " (launched as rank \(launched))")
                    + ", pid \(getpid()), host \(topology.hosts[launched])")
        }
        // Every rank reaches the same verdict here (the hashes are all-gathered, then the configs are
        // equal), so a refusal ends MPI on all of them cleanly: mpirun then forwards every rank's message
        // instead of tearing the job down at the first non-zero exit.
        try finishingOnError(world) { try RankAgreement.check(world: world, config: config) }
        let data = try TrainingData.make(config)
        let trainer = try Trainer(
            config: config, stream: data.stream, world: world, hosts: topology.hostsByMeshRank)
        // Rank 0 checks its outputs, then claims the run directory and tells every rank its path.
        var lock: RunLock?
        var evaluate: ((Int, LlamaModel) throws -> [String: Double])?
        let path = try finishingOnError(world) {
            try RankAgreement.fromRankZero(world) { () -> String in
                if let dumpParams, let reason = unwritableReason(dumpParams) {
                    throw ConfigError("--dump-params \(dumpParams): \(reason)")
                }
                evaluate = try TrainingEval.make(config: config, dataTokenizer: data.tokenizer)
                lock = try RunLock.claim(requested, use: resume != nil ? .resume : overwrite ? .overwrite : .new)
                return lock!.path
            }
        }
        let hostsByMeshRank = topology.hostsByMeshRank
        try finishingOnError(world) {
            try SharedRunDirectory.check(path, world: world) { hostsByMeshRank[$0] }
        }
        guard let lock else {
            let session = TrainingSession(trainer: trainer, runDirectory: path, directory: nil, say: { _ in })
            try resumeOnEveryRank(session, world: world)
            try runStoppable(session, world: world, progress: { _ in })
            trainer.gatherParameters()
            try trainer.checkReplicasAgree()
            _ = try trainer.wholeModel()
            CommWorld.finish(world)
            return
        }
        let dir = try RunDirectory(lock: lock, config: config)
        if !data.sources.isEmpty { try dir.recordSources(data.sources) }
        if let sft = data.sft { try dir.recordSFT(sft) }
        for line in header(dir: dir, config: config, trainer: trainer, data: data)
            + hostLines(topology, trainer.plan.mesh)
        {
            printErr(line)
            dir.note(line)
        }
        let session = TrainingSession(trainer: trainer, directory: dir, say: printErr)
        session.evaluate = evaluate
        try resumeOnEveryRank(session, world: world)
        let progress = ProgressLine(total: config.steps)
        let mesh = trainer.plan.mesh
        let recorder = RunRegistration.recorder(
            config: config, directory: dir.path,
            ranks: ["ranks": mesh.world, "data": mesh.data, "tensor": mesh.tensor, "pipeline": mesh.pipeline],
            resuming: resume != nil)
        recorder?.begin()
        do {
            do {
                try runStoppable(session, world: world) { metrics in
                    progress.update(metrics)
                    recorder?.changed()
                }
            } catch let error where !(error is ExitCode) {
                dir.note("stopped: \(error)")
                throw error
            }
            try finish(trainer: trainer, dir: dir, config: config, world: world, data: data)
        } catch {
            recorder?.finish(error is ExitCode ? .killed : .failed, error: error is ExitCode ? nil : "\(error)")
            throw error
        }
        if let number = recorder?.finish(.completed) {
            printErr(
                "run \(number) in the run registry: `kumo runs show \(number)`; `kumo dashboard --port 8080` shows every run"
            )
        }
    }

    /// After the last step on rank 0: checks the replicas, writes model.safetensors (recording the
    /// data's tokenizer and, after SFT or DPO, the prompt template tuned with) and `--dump-params`, ends MPI and prints the samples.
    private func finish(
        trainer: Trainer, dir: RunDirectory, config: RunConfig, world: any Communicator, data: TrainingData
    ) throws {
        trainer.gatherParameters()
        try trainer.checkReplicasAgree()
        dir.note(
            "finished \(config.steps) steps; the parameters of all \(trainer.plan.mesh.data) data-parallel ranks agree")
        guard let model = try trainer.wholeModel() else { preconditionFailure("rank 0 gathers the whole model") }
        let weights = dir.path + "/model.safetensors"
        let tuned = config.data.format == .text ? nil : config.data.chatTemplate.rawValue
        try KumoWeights.save(model, to: weights, tokenizer: data.tokenizerName, chatTemplate: tuned)
        for line in ["final weights: \(weights) (kumo eval, generate, serve and convert read it with --model)"] {
            printErr(line)
            dir.note(line)
        }
        if let dumpParams {
            let p = model.params
            do {
                try Data(bytes: p.pointer, count: 4 * p.count).write(to: URL(fileURLWithPath: dumpParams))
            } catch {
                throw ConfigError("--dump-params \(dumpParams): cannot write: \(error.localizedDescription)")
            }
        }
        CommWorld.finish(world)
        printSamples(config: config, model: model, tokenizer: data.tokenizer, dir: dir)
    }

    /// The lines that open train.log: the run's directory, ranks, model, data, batch and memory.
    private func header(dir: RunDirectory, config: RunConfig, trainer: Trainer, data: TrainingData) -> [String] {
        let c = config.model
        let plan = trainer.plan
        let ranks = plan.mesh.world
        return [
            "run directory \(dir.path)",
            "ranks: \(ranks) (data-parallel \(plan.mesh.data), tensor \(plan.mesh.tensor), pipeline "
                + "\(plan.mesh.pipeline)); gradient buckets: \(plan.dataParallel.buckets.ranges.count); ZeRO stage "
                + "\(plan.config.zeroStage.rawValue): "
                + String(format: "optimizer state %.1f MiB per rank", Double(trainer.optimizer.stateBytes) / 1_048_576),
            "model: \(c.shapeSummary), \(ParameterLayout(c).count) parameters"
                + (c.parallelLayers ? ", parallel layers" : "") + (c.tieWordEmbeddings ? ", tied embeddings" : ""),
            "pipeline: "
                + plan.stages.stages.map { "blocks \($0.lowerBound)..<\($0.upperBound)" }
                .joined(separator: " | ") + " (schedule \(plan.config.schedule.rawValue))",
            "data: " + data.summary,
            "batch: \(config.globalBatchSize)" + (config.rowsPerSample == 2 ? " pairs × 2 sequences" : "")
                + " × \(config.seqLength) tokens (micro-batch \(config.microBatchSize), "
                + "\(trainer.accumulationSteps) accumulation steps per rank), \(config.steps) steps, "
                + "\(config.threads) threads per rank",
            "memory: about \(config.memory(ranks: ranks).summary); activation recompute \(config.recompute.rawValue)",
            "precision: " + (config.precision == .bf16 ? "bf16; " + BF16GEMM.selection.reason : "fp32"),
            String(
                format: "measured %@ peak: %.1f GFLOP/s on %d threads × %d ranks",
                config.precision == .bf16 ? "bf16 GEMM" : "sgemm", trainer.peakGFLOPs, config.threads, ranks)
                + " (OpenBLAS kernels: \(BLASKernels.coreName))",
        ]
    }

    /// Where the ranks run, when they span hosts: each host's ranks and mesh coordinates, and a warning
    /// for tensor groups that cannot stay inside a host.
    private func hostLines(_ topology: HostTopology, _ mesh: DeviceMesh) -> [String] {
        guard topology.spansHosts else { return [] }
        let split = topology.groupsAcrossHosts(size: mesh.tensor)
        return topology.lines(mesh: mesh)
            + (split.isEmpty
                ? []
                : [
                    "warning: tensor groups of mesh ranks "
                        + split.map { $0.map(String.init).joined(separator: ",") }.joined(separator: "; ")
                        + " span hosts: their all-reduces cross the network; launch a multiple of parallel.tensor = "
                        + "\(mesh.tensor) ranks on each host"
                ])
    }

    /// Runs `body`; on an error ends MPI first (every rank got the same verdict) and rethrows it.
    private func finishingOnError<T>(_ world: any Communicator, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            CommWorld.finish(world)
            throw error
        }
    }

    /// Trains with SIGINT and SIGTERM as requests to stop after the current step (every rank at the
    /// same one, see `TrainingSession.run`); a stop ends MPI and exits with 128 + the signal's number.
    private func runStoppable(
        _ session: TrainingSession, world: any Communicator, progress: (StepMetrics) -> Void
    ) throws {
        let who = world.size > 1 ? "kumo rank \(world.rank)" : "kumo"
        let signals = StopSignals { signal in
            printErr(
                "\(who): \(TrainingStopped.name(of: signal)) received: stopping after the current step "
                    + "(a second signal exits at once)")
        }
        session.stopRequested = { signals.received }
        do {
            try withExtendedLifetime(signals) { try session.run(progress: progress) }
        } catch let stop as TrainingStopped {
            CommWorld.finish(world)
            throw ExitCode(stop.exitStatus)
        }
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

    /// `--run-dir`, else for `--resume PATH` the run directory above `PATH/..`, else nil (a new name).
    private func requestedRunDirectory() throws -> String? {
        if let runDir { return runDir }
        guard let resume else { return nil }
        guard resume != "latest" else { throw ValidationFailure("--resume latest needs --run-dir DIR") }
        return ((resume as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }

    private func printSamples(config: RunConfig, model: LlamaModel, tokenizer: (any Tokenizer)?, dir: RunDirectory) {
        let prompts = config.log.samples
        guard !prompts.isEmpty else { return }
        guard let tokenizer else {
            printErr("log.samples ignored: synthetic data has no text")
            return
        }
        print("Samples (temperature \(config.log.temperature)):")
        // One cache slot of the trained context: a sample ends there, or at the end-of-document token.
        let capacity = min(config.seqLength, model.config.maxPositionEmbeddings)
        let generator = Generator(
            engine: InferenceEngine(model: model, slots: 1, capacity: capacity), tokenizer: tokenizer)
        for (i, prompt) in prompts.enumerated() {
            let sampling = SamplingParameters(
                temperature: config.log.temperature, seed: config.seed &+ UInt64(i))
            // An empty prompt starts a document: from the end-of-document token.
            let ids = tokenizer.encode(prompt)
            let request = GenerationRequest(
                prompt: ids.isEmpty ? [tokenizer.eod] : Array(ids.suffix(max(capacity - 1, 1))),
                maxNewTokens: config.log.sampleTokens, sampling: sampling, stopTokens: [tokenizer.eod])
            let text = prompt + generator.generate([request])[0].text
            print("--- \(text)")
            dir.note("sample: \(text)")
        }
    }
}

/// Writes a line to standard error.
func printErr(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
