import Foundation
import KumoRegistry
import KumoTrain

/// How a run directory becomes a registry entry: the live recording of `kumo train` and the backfill
/// of `kumo runs import`, from the same facts (the resolved config.toml, train.log, checkpoints/).
enum RunRegistration {
    /// The recorder of a run that rank 0 has just claimed `directory` for; nil when `run.registry = false`.
    static func recorder(config: RunConfig, directory: String, ranks: [String: Int], resuming: Bool) -> RunRecorder? {
        guard config.run.registry else { return nil }
        let binary = try? RankAgreement.binaryHash()
        let start = runStart(
            config: config, directory: directory, layout: ranks, startedAt: Date(), pid: Int(getpid()),
            binaryHash: binary.map { String(format: "%016llx", $0) })
        return RunRecorder(
            start: start, continuing: resuming, open: { try RunRegistry.open() },
            checkpoints: { completeCheckpoints(start.runDirectory) },
            warn: { printErr("kumo: " + $0) })
    }

    /// The registry's record of a run of `config` in `directory`.
    static func runStart(
        config: RunConfig, directory: String, layout: [String: Int], startedAt: Date, pid: Int?, binaryHash: String?
    ) -> RunStart {
        let text = config.toml()
        var layout = layout
        layout["tensor"] = layout["tensor"] ?? config.int("parallel.tensor")
        layout["pipeline"] = layout["pipeline"] ?? config.int("parallel.pipeline")
        layout["zero_stage"] = config.int("parallel.zero_stage")
        layout["threads"] = config.threads
        return RunStart(
            name: (directory as NSString).lastPathComponent, experiment: config.run.experiment,
            runDirectory: absolute(directory), config: text,
            configValues: config.values.mapValues {
                if case .string(let s) = $0 { return s }
                return "\($0)"
            },
            configHash: String(format: "%016llx", RankAgreement.configHash(config)), binaryHash: binaryHash,
            host: ProcessInfo.processInfo.hostName, pid: pid, layout: layout,
            tokensPerStep: config.globalBatchSize * config.rowsPerSample * config.seqLength,
            totalSteps: config.steps, startedAt: startedAt)
    }

    /// `(step, path)` of the complete checkpoints in `directory`.
    static func completeCheckpoints(_ directory: String) -> [(step: Int, path: String)] {
        CheckpointStore(runDirectory: directory).entries().filter(\.complete).map { ($0.step, $0.path) }
    }

    /// Records (or re-records) the run in `directory` from its files; returns its number and status.
    static func importRun(_ directory: String, into registry: RunRegistry) throws -> (Int, RunStatus) {
        let dir = absolute(directory)
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir + "/config.toml"), fm.fileExists(atPath: dir + "/metrics.jsonl") else {
            throw RegistryError(
                "\(dir) is not a run directory: it needs config.toml and metrics.jsonl (kumo train writes them)")
        }
        let config = try RunConfig.load(path: dir + "/config.toml", overrides: [])
        let log = (try? String(contentsOfFile: dir + "/train.log", encoding: .utf8)) ?? ""
        let outcome = outcome(log: log, holder: lockHolder(dir))
        let start = runStart(
            config: config, directory: dir, layout: ranks(log: log), startedAt: startTime(log: log, directory: dir),
            pid: outcome.pid, binaryHash: nil)
        let number = try registry.register(start, continuing: true)
        try RunSync(registry: registry, run: number, directory: dir).sync(checkpoints: completeCheckpoints(dir))
        if outcome.status != .running {
            let modified = (try? fm.attributesOfItem(atPath: dir + "/train.log"))?[.modificationDate] as? Date
            try registry.finish(run: number, status: outcome.status, error: outcome.error, at: modified ?? Date())
        }
        return (number, outcome.status)
    }

    /// How a run ended, from train.log's last words, or `running` while a process holds its lock.
    static func outcome(log: String, holder: Int?) -> (status: RunStatus, error: String?, pid: Int?) {
        if let holder { return (.running, nil, holder) }
        let lines = log.split(separator: "\n").map {
            $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
        }
        if let stop = lines.last(where: { $0.hasPrefix("stopped by SIG") }) { return (.killed, stop, nil) }
        if let stop = lines.last(where: { $0.hasPrefix("stopped: ") }) {
            return (.failed, String(stop.dropFirst(9)), nil)
        }
        if lines.contains(where: { $0.hasPrefix("finished ") }) { return (.completed, nil, nil) }
        return (.killed, "ended without a word in train.log (killed, or the machine went down)", nil)
    }

    /// The pid that holds the run directory's lock, if a process does.
    static func lockHolder(_ directory: String) -> Int? {
        let path = directory + "/" + RunLock.fileName
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) != 0 else { return nil }
        return (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        } ?? 0
    }

    /// `ranks`, `data`, `tensor`, `pipeline` from train.log's "ranks: N (data-parallel D, tensor T, pipeline P)".
    static func ranks(log: String) -> [String: Int] {
        guard let line = log.split(separator: "\n").first(where: { $0.contains(" ranks: ") }) else { return [:] }
        let numbers = line.split(separator: " ranks: ", maxSplits: 1).last!.split(whereSeparator: { !$0.isNumber })
            .compactMap { Int($0) }
        guard numbers.count >= 4 else { return [:] }
        return ["ranks": numbers[0], "data": numbers[1], "tensor": numbers[2], "pipeline": numbers[3]]
    }

    /// The time stamp of train.log's first line, else config.toml's modification time.
    static func startTime(log: String, directory: String) -> Date {
        if let first = log.split(separator: " ", maxSplits: 1).first,
            let date = ISO8601DateFormatter().date(from: String(first))
        {
            return date
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/config.toml")
        return attributes?[.modificationDate] as? Date ?? Date()
    }

    /// `path` made absolute, with symbolic links resolved where it exists.
    static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else {
            return URL(fileURLWithPath: path).standardizedFileURL.path
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
