import Foundation

/// The registry of numbered runs (LLM-jp numbers every experiment): one row per run, every metrics
/// line as written to metrics.jsonl, evaluation scores and checkpoints. The run directory stays the
/// source of truth; `kumo runs import` rebuilds a run's rows from it.
public final class RunRegistry {
    public let database: any SQLDatabase
    /// A running run whose heartbeat is older than this is `killed` (the writer beats every 10 s).
    public static let staleAfter: TimeInterval = 120

    /// Opens (and migrates) `database`.
    public init(database: any SQLDatabase) throws {
        self.database = database
        try Schema.migrate(database)
    }

    /// The registry the environment names: `KUMO_REGISTRY=postgresql://...`, else SQLite at
    /// `$KUMO_HOME/registry.sqlite` (`KUMO_HOME` defaults to `~/.kumo`).
    public static func open(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RunRegistry {
        if let url = environment["KUMO_REGISTRY"], !url.isEmpty {
            return try RunRegistry(database: PostgresDatabase(url: url))
        }
        return try RunRegistry(database: SQLiteDatabase(path: location(environment: environment)))
    }

    /// `$KUMO_HOME/registry.sqlite`.
    public static func location(environment: [String: String]) -> String {
        let home = environment["KUMO_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.kumo")
        return home + "/registry.sqlite"
    }

    // MARK: writing

    /// Registers a new run (a new number) or, when `continuing`, the latest run of the same directory
    /// (a resumed run keeps its number); its status becomes `running`. Returns the number.
    public func register(_ start: RunStart, continuing: Bool) throws -> Int {
        let values: [SQLValue] = [
            .text(start.name), .text(start.experiment), .text(start.config), .text(Self.json(start.configValues)),
            .text(start.configHash), SQLValue(start.binaryHash), .text(start.host), SQLValue(start.pid),
            .text(Self.json(start.layout)), SQLValue(start.tokensPerStep), SQLValue(start.totalSteps),
        ]
        let now = SQLValue.real(Date().timeIntervalSince1970)
        return try database.write { db in
            if continuing, let number = try Self.latestRun(in: start.runDirectory, db) {
                try db.execute(
                    """
                    UPDATE runs SET name = ?, experiment = ?, config = ?, config_values = ?, config_hash = ?,
                    binary_hash = ?, host = ?, pid = ?, layout = ?, tokens_per_step = ?, total_steps = ?,
                    status = 'running', ended_at = NULL, error = NULL, heartbeat_at = ? WHERE number = ?
                    """, values + [now, .integer(Int64(number))])
                return number
            }
            let rows = try db.execute(
                """
                INSERT INTO runs (name, experiment, config, config_values, config_hash, binary_hash, host, pid, layout,
                tokens_per_step, total_steps, run_dir, status, started_at, heartbeat_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING number
                """, values + [.text(start.runDirectory), .real(start.startedAt.timeIntervalSince1970), now])
            guard let number = rows.first?["number"]?.int else {
                throw RegistryError("the run registry \(database.location) returned no run number")
            }
            return number
        }
    }

    /// Stores metrics.jsonl lines `first`, `first + 1`, ... of run `number` (0-based line numbers),
    /// replacing any stored lines from `first` on (a resumed run truncates its file first), and updates
    /// the run's summary and evaluation scores. Lines are stored exactly as written.
    public func appendMetrics(run number: Int, from first: Int, lines: [String]) throws {
        let parsed = lines.map(MetricsLine.init)
        try database.write { db in
            let run = SQLValue.integer(Int64(number))
            let stored = try db.execute("SELECT metrics_lines FROM runs WHERE number = ?", [run]).first
            guard let count = stored?["metrics_lines"]?.int else {
                throw RegistryError("run \(number) is not in the run registry \(database.location)")
            }
            let rewrite = first < count
            if rewrite {
                try db.execute("DELETE FROM metrics WHERE run = ? AND seq >= ?", [run, .integer(Int64(first))])
                try db.execute("DELETE FROM evals WHERE run = ?", [run])
            }
            for (i, line) in parsed.enumerated() {
                try db.execute(
                    "INSERT INTO metrics (run, seq, step, kind, loss, line) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        run, .integer(Int64(first + i)), SQLValue(line.step), .text(line.kind.rawValue),
                        SQLValue(line.loss), .text(line.text),
                    ])
            }
            // A rewrite recomputes the summary and scores from every stored line; an append merges the new ones.
            let merged = rewrite ? try Self.storedLines(run: number, db) : parsed
            try Self.recordEvals(run: number, merged, db)
            try Self.updateSummary(
                run: number, with: merged, from: rewrite ? nil : stored, lines: first + lines.count, db)
        }
    }

    /// Marks run `number` alive now.
    public func heartbeat(run number: Int, at time: Date = Date()) throws {
        try database.write { db in
            try db.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE number = ?",
                [.real(time.timeIntervalSince1970), .integer(Int64(number))])
        }
    }

    /// Records a checkpoint the run wrote (replacing one of the same step).
    public func addCheckpoint(run number: Int, step: Int, path: String, at time: Date = Date()) throws {
        try database.write { db in
            let key: [SQLValue] = [.integer(Int64(number)), .integer(Int64(step))]
            try db.execute("DELETE FROM checkpoints WHERE run = ? AND step = ?", key)
            try db.execute(
                "INSERT INTO checkpoints (run, step, path, recorded_at) VALUES (?, ?, ?, ?)",
                key + [.text(path), .real(time.timeIntervalSince1970)])
        }
    }

    /// Ends run `number` with `status` (and the error that ended a failed run).
    public func finish(run number: Int, status: RunStatus, error: String? = nil, at time: Date = Date()) throws {
        try database.write { db in
            let t = SQLValue.real(time.timeIntervalSince1970)
            try db.execute(
                "UPDATE runs SET status = ?, error = ?, ended_at = ?, heartbeat_at = ? WHERE number = ?",
                [.text(status.rawValue), SQLValue(error), t, t, .integer(Int64(number))])
        }
    }

    // MARK: reading

    /// The runs `filter` selects, by number. Runs found dead are marked `killed` first.
    public func runs(_ filter: RunFilter = RunFilter()) throws -> [RunSummary] {
        try reapDeadRuns()
        var conditions: [String] = []
        var parameters: [SQLValue] = []
        if let experiment = filter.experiment {
            conditions.append("experiment = ?")
            parameters.append(.text(experiment))
        }
        if let status = filter.status {
            conditions.append("status = ?")
            parameters.append(.text(status.rawValue))
        }
        let clause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try database.read { db in
            let evals = try Self.latestEvals(db)
            return try db.execute("SELECT * FROM runs\(clause) ORDER BY number", parameters).map {
                Self.summary($0, eval: evals[$0["number"]?.int ?? -1] ?? [:])
            }
        }
    }

    /// Run `number` with its config, checkpoints and evaluation scores; nil when there is none.
    public func run(_ number: Int) throws -> RunDetail? {
        try reapDeadRuns()
        return try database.read { db in
            let key: [SQLValue] = [.integer(Int64(number))]
            guard let row = try db.execute("SELECT * FROM runs WHERE number = ?", key).first else { return nil }
            let evals = try db.execute("SELECT step, name, value FROM evals WHERE run = ? ORDER BY step, name", key).map
            {
                EvalRecord(step: $0["step"]?.int ?? 0, name: $0["name"]?.string ?? "", value: $0["value"]?.double)
            }
            let checkpoints = try db.execute(
                "SELECT step, path, recorded_at FROM checkpoints WHERE run = ? ORDER BY step", key
            ).map {
                CheckpointRecord(
                    step: $0["step"]?.int ?? 0, path: $0["path"]?.string ?? "",
                    recordedAt: Date(timeIntervalSince1970: $0["recorded_at"]?.double ?? 0))
            }
            var latest: [String: Double] = [:]
            for e in evals { latest[e.name] = e.value }
            return RunDetail(
                summary: Self.summary(row, eval: latest), config: row["config"]?.string ?? "",
                configValues: Self.decode(row["config_values"]) ?? [:], pid: row["pid"]?.int,
                error: row["error"]?.string, checkpoints: checkpoints, evals: evals)
        }
    }

    /// Run `number`'s metrics.jsonl lines as written, in order (from line `from` on).
    public func metricsLines(run number: Int, from first: Int = 0) throws -> [String] {
        try database.read { db in
            try db.execute(
                "SELECT line FROM metrics WHERE run = ? AND seq >= ? ORDER BY seq",
                [.integer(Int64(number)), .integer(Int64(first))]
            ).compactMap { $0["line"]?.string }
        }
    }

    /// The latest run registered for `directory` (absolute path), if any.
    public func latestRun(in directory: String) throws -> Int? {
        try database.read { db in try Self.latestRun(in: directory, db) }
    }

    /// Marks `killed` the running runs whose heartbeat is older than `staleAfter`, or whose process is
    /// gone from this host.
    public func reapDeadRuns(now: Date = Date()) throws {
        let host = ProcessInfo.processInfo.hostName
        let dead = try database.read { db in
            try db.execute("SELECT number, host, pid, heartbeat_at FROM runs WHERE status = 'running'").filter { row in
                let beat = row["heartbeat_at"]?.double ?? 0
                if now.timeIntervalSince1970 - beat > Self.staleAfter { return true }
                guard row["host"]?.string == host, let pid = row["pid"]?.int, pid > 0 else { return false }
                return kill(pid_t(pid), 0) != 0 && errno == ESRCH
            }
        }
        for row in dead {
            guard let number = row["number"]?.int else { continue }
            try database.write { db in
                try db.execute(
                    "UPDATE runs SET status = 'killed', ended_at = heartbeat_at, error = ? "
                        + "WHERE number = ? AND status = 'running'",
                    [.text("found dead: no heartbeat, or its process is gone"), .integer(Int64(number))])
            }
        }
    }
}
