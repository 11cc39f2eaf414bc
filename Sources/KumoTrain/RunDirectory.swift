import Foundation
import KumoData

/// The run directory of DESIGN.md: `config.toml` (resolved), `metrics.jsonl` (one object per
/// logged step), `train.log` (human log), `data_sources.json` (prepared datasets and their release
/// levels), `data_sft.json` (what became of SFT examples) and `checkpoints/`, claimed by a `RunLock` held as long as this object lives.
public final class RunDirectory {
    public let path: String
    private let lock: RunLock
    private let metrics: FileHandle
    private let log: FileHandle

    /// Fills the directory `lock` claimed: `checkpoints/` and the resolved configuration.
    public init(lock: RunLock, config: RunConfig) throws {
        path = lock.path
        self.lock = lock
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: path + "/checkpoints", withIntermediateDirectories: true)
            try config.toml().write(toFile: path + "/config.toml", atomically: true, encoding: .utf8)
        } catch {
            throw ConfigError("cannot create run directory \(path): \(error.localizedDescription)")
        }
        for file in ["metrics.jsonl", "train.log"] where !fm.fileExists(atPath: path + "/" + file) {
            guard fm.createFile(atPath: path + "/" + file, contents: nil) else {
                throw ConfigError("cannot create \(path)/\(file): check that the run directory is writable")
            }
        }
        metrics = try FileHandle(forWritingTo: URL(fileURLWithPath: path + "/metrics.jsonl"))
        log = try FileHandle(forWritingTo: URL(fileURLWithPath: path + "/train.log"))
        metrics.seekToEndOfFile()
        log.seekToEndOfFile()
    }

    deinit {
        try? metrics.close()
        try? log.close()
    }

    /// Default directory name for a run started at `now`: `runs/run-YYYYMMDD-HHMMSS` (`RunLock.claim`
    /// appends `-2`, `-3`, ... when it is taken).
    public static func defaultPath(now: Date = Date()) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return "runs/run-" + f.string(from: now)
    }

    /// Writes `data_sources.json`: the prepared datasets of the run with their release levels.
    public func recordSources(_ sources: [TrainingSource]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(sources).write(to: URL(fileURLWithPath: path + "/data_sources.json"), options: .atomic)
        for source in sources {
            note(
                "data source \(source.prefix): level \(source.level.rawValue) (\(source.level.allowed)), "
                    + "weight \(source.weight), \(source.tokens) tokens, \(source.samples) samples")
        }
    }

    /// Writes `data_sft.json`: what became of the SFT examples (kept, truncated, skipped by reason).
    public func recordSFT(_ stats: SFTDataStats) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(stats).write(to: URL(fileURLWithPath: path + "/data_sft.json"), options: .atomic)
    }

    /// Appends one metrics line.
    public func record(_ m: StepMetrics) {
        recordLine(Self.json(m))
    }

    /// Appends a line (one JSON object) to metrics.jsonl.
    public func recordLine(_ json: String) {
        metrics.write(Data((json + "\n").utf8))
    }

    /// Drops the metrics lines after `step` (and a line torn by a kill), so that a run resumed at
    /// `step` continues the file without repeating steps.
    public func truncateMetrics(after step: Int) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/metrics.jsonl")))
        var keep = 0
        while let end = bytes[keep...].firstIndex(of: UInt8(ascii: "\n")),
            let object = try? JSONSerialization.jsonObject(with: Data(bytes[keep..<end])) as? [String: Any],
            let lineStep = object["step"] as? Int, lineStep <= step
        {
            keep = end + 1
        }
        try metrics.truncate(atOffset: UInt64(keep))
        metrics.seekToEndOfFile()
    }

    /// Appends a line to the human log (with a UTC timestamp).
    public func note(_ line: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        log.write(Data("\(stamp) \(line)\n".utf8))
    }

    /// The metrics.jsonl object of a step; floats in shortest round-trip form, non-finite ones as null;
    /// `event` and `reason` when the spike guard rejected the step; memory and comm keys last, sorted.
    public static func json(_ m: StepMetrics) -> String {
        func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        let event = m.event.map {
            ",\"event\":\"\($0.action.rawValue)\",\"reason\":\"" + $0.reason.replacingOccurrences(of: "\"", with: "'")
                + "\""
        }
        return "{\"step\":\(m.step),\"loss\":\(number(m.loss)),\"lr\":\(m.lr),\"grad_norm\":\(number(m.gradNorm)),"
            + "\"tokens_per_s\":\(m.tokensPerSecond),\"mfu\":\(m.mfu),\"step_s\":\(m.stepSeconds),"
            + "\"elapsed_s\":\(m.elapsedSeconds)\(event ?? "")"
            + m.extra.keys.sorted().map { ",\"\($0)\":\(m.extra[$0]!)" }.joined() + "}"
    }
}
