import Foundation
import KumoData

/// The run directory of DESIGN.md: `config.toml` (resolved), `metrics.jsonl` (one object per
/// logged step), `train.log` (human log), `data_sources.json` (prepared datasets and their release
/// levels) and `checkpoints/`.
public final class RunDirectory {
    public let path: String
    private let metrics: FileHandle
    private let log: FileHandle

    /// Creates (or reuses) `path` and writes the resolved configuration.
    public init(path: String, config: RunConfig) throws {
        self.path = path
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: path + "/checkpoints", withIntermediateDirectories: true)
            try config.toml().write(toFile: path + "/config.toml", atomically: true, encoding: .utf8)
        } catch {
            throw ConfigError("cannot create run directory \(path): \(error.localizedDescription)")
        }
        for file in ["metrics.jsonl", "train.log"] where !fm.fileExists(atPath: path + "/" + file) {
            fm.createFile(atPath: path + "/" + file, contents: nil)
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

    /// Default directory name for a new run: `runs/run-YYYYMMDD-HHMMSS`.
    public static func defaultPath() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return "runs/run-" + f.string(from: Date())
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

    /// Appends one metrics line.
    public func record(_ m: StepMetrics) {
        metrics.write(Data((Self.json(m) + "\n").utf8))
    }

    /// Appends a line to the human log (with a UTC timestamp).
    public func note(_ line: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        log.write(Data("\(stamp) \(line)\n".utf8))
    }

    /// The metrics.jsonl object of a step; floats in shortest round-trip form; memory and comm keys last, sorted.
    public static func json(_ m: StepMetrics) -> String {
        "{\"step\":\(m.step),\"loss\":\(m.loss),\"lr\":\(m.lr),\"grad_norm\":\(m.gradNorm),"
            + "\"tokens_per_s\":\(m.tokensPerSecond),\"mfu\":\(m.mfu),\"step_s\":\(m.stepSeconds),"
            + "\"elapsed_s\":\(m.elapsedSeconds)"
            + m.extra.keys.sorted().map { ",\"\($0)\":\(m.extra[$0]!)" }.joined() + "}"
    }
}
