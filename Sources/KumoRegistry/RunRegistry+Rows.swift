import Foundation

/// A metrics.jsonl line as the registry indexes it: a training step (`loss`, ...) or an evaluation
/// (`eval_s` and the scores).
struct MetricsLine {
    enum Kind: String { case train, eval }
    let text: String
    let step: Int?
    let kind: Kind
    let loss: Double?
    let tokensPerSecond: Double?
    let mfu: Double?
    /// The scores of an evaluation line: every number but `step` and `eval_s` (its duration).
    let evalScores: [(String, Double)]

    init(_ text: String) {
        self.text = text
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
        step = (object["step"] as? NSNumber)?.intValue
        kind = object["eval_s"] == nil ? .train : .eval
        loss = kind == .train ? number("loss").flatMap { $0.isFinite ? $0 : nil } : nil
        tokensPerSecond = kind == .train ? number("tokens_per_s") : nil
        mfu = kind == .train ? number("mfu") : nil
        evalScores =
            kind == .eval
            ? object.keys.sorted().filter { $0 != "step" && $0 != "eval_s" }.compactMap { key in
                number(key).map { (key, $0) }
            } : []
    }
}

extension RunRegistry {
    static func latestRun(in directory: String, _ db: any SQLExecutor) throws -> Int? {
        try db.execute("SELECT MAX(number) AS n FROM runs WHERE run_dir = ?", [.text(directory)]).first?["n"]?.int
    }

    static func storedLines(run number: Int, _ db: any SQLExecutor) throws -> [MetricsLine] {
        try db.execute("SELECT line FROM metrics WHERE run = ? ORDER BY seq", [.integer(Int64(number))]).compactMap {
            $0["line"]?.string.map(MetricsLine.init)
        }
    }

    static func recordEvals(run number: Int, _ lines: [MetricsLine], _ db: any SQLExecutor) throws {
        let run = SQLValue.integer(Int64(number))
        for line in lines where line.kind == .eval {
            for (name, value) in line.evalScores {
                let key: [SQLValue] = [run, SQLValue(line.step), .text(name)]
                try db.execute("DELETE FROM evals WHERE run = ? AND step = ? AND name = ?", key)
                try db.execute(
                    "INSERT INTO evals (run, step, name, value) VALUES (?, ?, ?, ?)", key + [SQLValue(value)])
            }
        }
    }

    /// Folds `lines` into the run's summary columns: starting from `previous` (the stored row) or, for
    /// a rewrite (nil), from nothing.
    static func updateSummary(
        run number: Int, with lines: [MetricsLine], from previous: SQLRow?, lines count: Int, _ db: any SQLExecutor
    ) throws {
        let row = try previous.map { _ in
            try db.execute(
                "SELECT steps, last_loss, min_loss, tokens_per_s, mfu FROM runs WHERE number = ?",
                [.integer(Int64(number))]
            ).first ?? [:]
        }
        var steps = row?["steps"]?.int ?? 0
        var lastLoss = row?["last_loss"]?.double
        var minLoss = row?["min_loss"]?.double
        var tokensPerSecond = row?["tokens_per_s"]?.double
        var mfu = row?["mfu"]?.double
        for line in lines where line.kind == .train {
            steps = max(steps, line.step ?? 0)
            if let loss = line.loss {
                lastLoss = loss
                minLoss = min(minLoss ?? loss, loss)
            }
            tokensPerSecond = line.tokensPerSecond ?? tokensPerSecond
            mfu = line.mfu ?? mfu
        }
        try db.execute(
            "UPDATE runs SET steps = ?, last_loss = ?, min_loss = ?, tokens_per_s = ?, mfu = ?, metrics_lines = ?, "
                + "heartbeat_at = ? WHERE number = ?",
            [
                SQLValue(steps), SQLValue(lastLoss), SQLValue(minLoss), SQLValue(tokensPerSecond), SQLValue(mfu),
                SQLValue(count), .real(Date().timeIntervalSince1970), .integer(Int64(number)),
            ])
    }

    /// The latest value of each evaluation metric, by run.
    static func latestEvals(_ db: any SQLExecutor) throws -> [Int: [String: Double]] {
        var out: [Int: [String: Double]] = [:]
        for row in try db.execute("SELECT run, name, value FROM evals ORDER BY run, step") {
            guard let run = row["run"]?.int, let name = row["name"]?.string else { continue }
            out[run, default: [:]][name] = row["value"]?.double
        }
        return out
    }

    static func summary(_ row: SQLRow, eval: [String: Double]) -> RunSummary {
        func date(_ key: String) -> Date? { row[key]?.double.map(Date.init(timeIntervalSince1970:)) }
        let steps = row["steps"]?.int ?? 0
        return RunSummary(
            number: row["number"]?.int ?? 0, name: row["name"]?.string ?? "",
            experiment: row["experiment"]?.string ?? "",
            status: row["status"]?.string.flatMap(RunStatus.init(rawValue:)) ?? .failed,
            runDir: row["run_dir"]?.string ?? "", steps: steps, totalSteps: row["total_steps"]?.int ?? 0,
            lastLoss: row["last_loss"]?.double, minLoss: row["min_loss"]?.double,
            tokens: steps * (row["tokens_per_step"]?.int ?? 0), tokensPerS: row["tokens_per_s"]?.double,
            mfu: row["mfu"]?.double, eval: eval, startedAt: date("started_at") ?? Date(timeIntervalSince1970: 0),
            endedAt: date("ended_at"), heartbeatAt: date("heartbeat_at") ?? Date(timeIntervalSince1970: 0),
            host: row["host"]?.string ?? "", configHash: row["config_hash"]?.string ?? "",
            binaryHash: row["binary_hash"]?.string, layout: decode(row["layout"]) ?? [:])
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ value: SQLValue?) -> T? {
        value?.string.flatMap { try? JSONDecoder().decode(T.self, from: Data($0.utf8)) }
    }
}
