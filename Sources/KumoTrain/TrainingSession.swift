import Foundation
import KumoCore
import KumoModel

/// The training loop of one rank: steps and metrics lines, a checkpoint every `checkpoint.every`
/// steps (and at the end) keeping the newest `checkpoint.keep`, the spike guard's rollbacks, and
/// resuming from a checkpoint. Every rank runs one; rank 0 alone owns the run directory, decides
/// which checkpoint to load and tells the others.
public final class TrainingSession {
    public let trainer: Trainer
    /// The run directory: rank 0's (nil on the other ranks).
    public let directory: RunDirectory?
    public let store: CheckpointStore
    /// The run directory's path (every rank's).
    private let runDirectory: String
    /// Receives each line meant for the user (also written to train.log).
    private let say: (String) -> Void
    private var rollbacks = 0
    /// Evaluates the whole model (the second argument) after the given step; returns metric name →
    /// value (`kumo train` sets it on rank 0 from `[eval]`). Called every `eval.interval` steps and
    /// after the last one, with rank 0's own model, or the tensor and pipeline shards or ZeRO-3
    /// partitions of every rank gathered into a whole one.
    public var evaluate: ((Int, LlamaModel) throws -> [String: Double])?
    /// The signal (SIGINT, SIGTERM) that asked this rank to stop, or nil; polled before every step.
    public var stopRequested: () -> Int32? = { nil }

    /// A session writing into `directory` (rank 0) or into the checkpoints of `runDirectory` alone
    /// (other ranks); `say` shows a line to the user.
    public init(trainer: Trainer, runDirectory: String, directory: RunDirectory?, say: @escaping (String) -> Void) {
        self.trainer = trainer
        self.directory = directory
        store = CheckpointStore(runDirectory: runDirectory)
        self.runDirectory = runDirectory
        self.say = say
        if directory != nil { store.removeAbandonedWrites() }
    }

    /// Rank 0's session (or a single process's), writing into `directory`.
    public convenience init(trainer: Trainer, directory: RunDirectory, say: @escaping (String) -> Void) {
        self.init(trainer: trainer, runDirectory: directory.path, directory: directory, say: say)
    }

    func tell(_ line: String) {
        guard let directory else { return }
        say(line)
        directory.note(line)
    }

    /// Rank 0 picks a checkpoint with `choose` (nil: none); every rank then opens and loads the same one.
    private func loadAgreed(_ choose: () throws -> VerifiedCheckpoint?) throws -> VerifiedCheckpoint? {
        var chosen: VerifiedCheckpoint?
        let path = try RankVerdict.fromRankZero(trainer.world) { () -> String? in
            chosen = try choose()
            return chosen?.path
        }
        guard let path else { return nil }
        let checkpoint = try chosen ?? trainer.verifyCheckpoint(path, checksums: false)
        _ = try RankVerdict.gather(trainer.world) {
            try trainer.restore(from: checkpoint)
            return []
        }
        return checkpoint
    }

    /// Continues from `latest` (the newest complete checkpoint that verifies; step 0 when there is
    /// none) or from the checkpoint directory `spec`, drops metrics lines after its step, and sets newer
    /// checkpoints aside as `abandoned-step-N` (they belong to the trajectory being replaced).
    public func resume(_ spec: String) throws {
        let t0 = SystemInfo.now()
        let checkpoint = try loadAgreed {
            guard spec == "latest" else { return try trainer.verifyCheckpoint(spec) }
            let found = try store.latestValid { try trainer.verifyCheckpoint($0) }
            for reason in found.skipped { tell("resume: skipped \(reason)") }
            if found.checkpoint == nil { tell("resume: no valid checkpoint in \(store.root); starting at step 0") }
            return found.checkpoint
        }
        if let checkpoint {
            tell(
                String(
                    format: "resume: using %@ (step %d, data position %d samples), verified and loaded in %.2f s",
                    checkpoint.path, trainer.step, trainer.dataPosition, SystemInfo.now() - t0))
            let changed = configDifferences(checkpoint.manifest.config, trainer.config.toml())
            if !changed.isEmpty {
                tell(
                    "resume: the configuration differs from the checkpoint's in "
                        + changed.map { "\($0.key) (\($0.old ?? "unset") → \($0.new ?? "unset"))" }
                        .joined(separator: ", "))
            }
            if let decay = changed.first(where: { $0.key == "optim.decay_steps" }) {
                tell(
                    "resume: learning-rate schedule recomputed: cosine decay until step \(decay.new ?? "?") instead "
                        + "of \(decay.old ?? "?"); step \(trainer.step + 1) uses learning rate "
                        + "\(trainer.config.schedule.lr(at: trainer.step) * trainer.lrScale)")
            }
            let saved = checkpoint.manifest.layout
            if saved != trainer.parallelLayout {
                tell("resume: resharded from \(saved) to \(trainer.parallelLayout)")
            }
        }
        guard let directory else { return }
        try directory.truncateMetrics(after: trainer.step)
        for entry in store.entries() where entry.step > trainer.step {
            tell("resume: set aside \(try store.abandon(entry)), a checkpoint after step \(trainer.step)")
        }
    }

    /// Trains until `train.steps`, calling `progress` after each logged step. Before each step every
    /// rank learns whether any was asked to stop (`stopRequested`); then all write a checkpoint
    /// (when checkpointing is on) and throw `TrainingStopped` at the same step.
    public func run(progress: (StepMetrics) -> Void) throws {
        let config = trainer.config
        let logEvery = config.log.every
        let checkpointEvery = config.checkpoint.every
        var checkpointed = trainer.step
        if let line = try trainer.prepareDPOReference(runDirectory: runDirectory) { tell(line) }
        while trainer.step < config.steps {
            if let signal = agreedStopSignal() {
                throw try stop(signal, checkpoint: checkpointEvery > 0 && checkpointed != trainer.step)
            }
            let m = try trainer.trainStep()
            if let event = m.event {
                directory?.record(m)
                tell("step \(m.step): spike guard \(event.action.rawValue): \(event.reason)")
                if event.action == .rollback {
                    try rollBack()
                    continue
                }
            } else if let directory, m.step % logEvery == 0 || m.step == config.steps {
                directory.record(m)
                progress(m)
            }
            let evalEvery = config.eval.interval
            if evalEvery > 0, m.event == nil, m.step % evalEvery == 0 || m.step == config.steps {
                // Every rank takes part in gathering its part of the model; rank 0 alone evaluates.
                if let model = try trainer.wholeModel(), let evaluate {
                    try recordEvaluation(step: m.step, model: model, evaluate)
                }
            }
            if checkpointEvery > 0 && (m.step % checkpointEvery == 0 || m.step == config.steps) {
                try checkpoint()
                checkpointed = m.step
            }
        }
    }

    /// Writes the checkpoint of the current step and deletes those beyond `checkpoint.keep`; returns its path.
    @discardableResult
    func checkpoint() throws -> String {
        let w = try trainer.saveCheckpoint(to: store)
        guard let directory else { return w.path }
        directory.note(String(format: "checkpoint %@: %d bytes in %.3f s", w.path, w.bytes, w.seconds))
        for old in store.prune(keep: trainer.config.checkpoint.keep) {
            directory.note("deleted checkpoint \(old)")
        }
        return w.path
    }

    /// Runs `evaluate` and writes its scores as one metrics.jsonl line (`step`, `eval_s` and the metrics)
    /// and one train.log line.
    private func recordEvaluation(
        step: Int, model: LlamaModel, _ evaluate: (Int, LlamaModel) throws -> [String: Double]
    ) throws {
        let t0 = SystemInfo.now()
        var scores = try evaluate(step, model)
        scores["eval_s"] = SystemInfo.now() - t0
        let fields = scores.keys.sorted().map { key in
            let value = scores[key]!
            return "\"\(key)\":" + (value.isFinite ? "\(value)" : "null")
        }
        directory?.recordLine("{\"step\":\(step)," + fields.joined(separator: ",") + "}")
        tell(
            "step \(step) eval: "
                + scores.keys.sorted().filter { !$0.hasSuffix("_stderr") }.map {
                    String(format: "%@ %.4g", $0, scores[$0]!)
                }.joined(separator: ", "))
    }

    /// Restores the newest checkpoint that verifies (or the initial weights), keeps the data position past
    /// the offending batches, and scales the learning rate by `train.spike.lr_factor`.
    private func rollBack() throws {
        let settings = trainer.spikeGuard.settings
        rollbacks += 1
        if rollbacks > settings.maxRollbacks {
            throw SpikeGuardError(
                description: "step \(trainer.step): \(rollbacks) rollbacks; the run stopped. Lower optim.lr or raise "
                    + "train.spike.max_rollbacks.")
        }
        let position = trainer.dataPosition
        let scale = trainer.lrScale * settings.lrFactor
        let checkpoint = try loadAgreed {
            let found = try store.latestValid(maxStep: trainer.step) { try trainer.verifyCheckpoint($0) }
            for reason in found.skipped { tell("rollback: skipped \(reason)") }
            return found.checkpoint
        }
        let source: String
        if let checkpoint {
            source = checkpoint.path
        } else {
            try trainer.resetToInitialState()
            source = "the initial weights (no checkpoint yet)"
        }
        let skipped = position - trainer.dataPosition
        trainer.dataPosition = position
        trainer.lrScale = scale
        directory?.recordLine(
            "{\"step\":\(trainer.step),\"event\":\"restored\",\"skipped_samples\":\(skipped),"
                + "\"data_position\":\(position),\"lr_scale\":\(scale)}")
        tell(
            "rollback: restored \(source) at step \(trainer.step); skipped \(skipped) samples; learning rate × \(scale)"
        )
    }
}

/// The `section.key` lines that differ between two resolved TOML configurations, sorted by key,
/// with the value in each (nil where the key is absent).
func configDifferences(_ a: String, _ b: String) -> [(key: String, old: String?, new: String?)] {
    func keyed(_ toml: String) -> [String: String] {
        var section = ""
        var out: [String: String] = [:]
        for line in toml.split(separator: "\n") {
            if line.hasPrefix("[") {
                section = String(line.dropFirst().dropLast())
            } else if let eq = line.range(of: " = ") {
                out[section + "." + line[..<eq.lowerBound]] = String(line[eq.upperBound...])
            }
        }
        return out
    }
    let x = keyed(a)
    let y = keyed(b)
    return Set(x.keys).union(y.keys).filter { x[$0] != y[$0] }.sorted().map { ($0, x[$0], y[$0]) }
}
