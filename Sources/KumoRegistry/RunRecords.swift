import Foundation

/// What a run's lifecycle ended in. `killed`: stopped by a signal, or found dead (its heartbeat went
/// stale, or its process is gone from the host that started it).
public enum RunStatus: String, Codable, CaseIterable, Sendable {
    case running, completed, failed, killed
}

/// What `kumo train` (rank 0) or `kumo runs import` knows of a run when it registers it.
public struct RunStart: Sendable {
    public var name: String
    public var experiment: String
    /// Absolute path of the run directory.
    public var runDirectory: String
    /// The resolved config.toml, its flattened keys (`model.hidden_size` → "256") and its hash.
    public var config: String
    public var configValues: [String: String]
    public var configHash: String
    public var binaryHash: String?
    public var host: String
    public var pid: Int?
    /// Ranks and parallel layout (`ranks`, `data`, `tensor`, `pipeline`, `threads`, ...).
    public var layout: [String: Int]
    public var tokensPerStep: Int
    public var totalSteps: Int
    public var startedAt: Date

    public init(
        name: String, experiment: String, runDirectory: String, config: String, configValues: [String: String],
        configHash: String, binaryHash: String?, host: String, pid: Int?, layout: [String: Int], tokensPerStep: Int,
        totalSteps: Int, startedAt: Date
    ) {
        self.name = name
        self.experiment = experiment
        self.runDirectory = runDirectory
        self.config = config
        self.configValues = configValues
        self.configHash = configHash
        self.binaryHash = binaryHash
        self.host = host
        self.pid = pid
        self.layout = layout
        self.tokensPerStep = tokensPerStep
        self.totalSteps = totalSteps
        self.startedAt = startedAt
    }
}

/// A row of `kumo runs list --json` and `/api/runs`.
public struct RunSummary: Codable, Equatable, Sendable {
    public var number: Int
    public var name: String
    public var experiment: String
    public var status: RunStatus
    public var runDir: String
    public var steps: Int
    public var totalSteps: Int
    public var lastLoss: Double?
    public var minLoss: Double?
    public var tokens: Int
    public var tokensPerS: Double?
    public var mfu: Double?
    /// The latest value of each evaluation metric.
    public var eval: [String: Double]
    public var startedAt: Date
    public var endedAt: Date?
    public var heartbeatAt: Date
    public var host: String
    public var configHash: String
    public var binaryHash: String?
    public var layout: [String: Int]

    /// Every key, a missing value as `null` (a run without a loss yet has `"last_loss": null`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(number, forKey: .number)
        try c.encode(name, forKey: .name)
        try c.encode(experiment, forKey: .experiment)
        try c.encode(status, forKey: .status)
        try c.encode(runDir, forKey: .runDir)
        try c.encode(steps, forKey: .steps)
        try c.encode(totalSteps, forKey: .totalSteps)
        try c.encode(lastLoss, forKey: .lastLoss)
        try c.encode(minLoss, forKey: .minLoss)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(tokensPerS, forKey: .tokensPerS)
        try c.encode(mfu, forKey: .mfu)
        try c.encode(eval, forKey: .eval)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(endedAt, forKey: .endedAt)
        try c.encode(heartbeatAt, forKey: .heartbeatAt)
        try c.encode(host, forKey: .host)
        try c.encode(configHash, forKey: .configHash)
        try c.encode(binaryHash, forKey: .binaryHash)
        try c.encode(layout, forKey: .layout)
    }
}

/// A checkpoint the run wrote.
public struct CheckpointRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var path: String
    public var recordedAt: Date
}

/// One evaluation score at a step.
public struct EvalRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var name: String
    public var value: Double?
}

/// `kumo runs show --json` and `/api/runs/N`: the summary, the resolved config and what the run wrote.
/// Its JSON is the summary's keys with `config`, `config_values`, `pid`, `error`, `checkpoints` and `evals` beside them.
public struct RunDetail: Codable, Equatable, Sendable {
    public var summary: RunSummary
    public var config: String
    public var configValues: [String: String]
    public var pid: Int?
    public var error: String?
    public var checkpoints: [CheckpointRecord]
    public var evals: [EvalRecord]

    private enum CodingKeys: String, CodingKey {
        case config, configValues, pid, error, checkpoints, evals
    }

    public init(
        summary: RunSummary, config: String, configValues: [String: String], pid: Int?, error: String?,
        checkpoints: [CheckpointRecord], evals: [EvalRecord]
    ) {
        self.summary = summary
        self.config = config
        self.configValues = configValues
        self.pid = pid
        self.error = error
        self.checkpoints = checkpoints
        self.evals = evals
    }

    public init(from decoder: any Decoder) throws {
        summary = try RunSummary(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        config = try c.decode(String.self, forKey: .config)
        configValues = try c.decode([String: String].self, forKey: .configValues)
        pid = try c.decodeIfPresent(Int.self, forKey: .pid)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        checkpoints = try c.decode([CheckpointRecord].self, forKey: .checkpoints)
        evals = try c.decode([EvalRecord].self, forKey: .evals)
    }

    public func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(config, forKey: .config)
        try c.encode(configValues, forKey: .configValues)
        try c.encodeIfPresent(pid, forKey: .pid)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encode(checkpoints, forKey: .checkpoints)
        try c.encode(evals, forKey: .evals)
    }
}

/// Which runs `RunRegistry.runs` returns.
public struct RunFilter: Sendable {
    public var experiment: String?
    public var status: RunStatus?
    public init(experiment: String? = nil, status: RunStatus? = nil) {
        self.experiment = experiment
        self.status = status
    }
}

extension JSONEncoder {
    /// The registry's JSON: snake_case keys, ISO 8601 times, sorted keys.
    public static var registry: JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

extension JSONDecoder {
    public static var registry: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
