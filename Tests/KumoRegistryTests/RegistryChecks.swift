import Foundation
import KumoRegistry
import XCTest

/// The registry's behaviour, checked the same way on every backend (SQLite and PostgreSQL).
struct RegistryChecks {
    /// Opens a new connection to the test's database (each call a separate one, as separate processes would).
    let open: () throws -> any SQLDatabase

    static func start(_ dir: String, experiment: String = "exp-a", host: String? = nil, pid: Int? = nil) -> RunStart {
        RunStart(
            name: (dir as NSString).lastPathComponent, experiment: experiment, runDirectory: dir,
            config: "[train]\nsteps = 4\n", configValues: ["train.steps": "4", "model.hidden_size": "64"],
            configHash: "00ff", binaryHash: "abcd", host: host ?? ProcessInfo.processInfo.hostName, pid: pid,
            layout: ["ranks": 1, "data": 1], tokensPerStep: 512, totalSteps: 4,
            startedAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    static let lines = [
        #"{"step":1,"loss":5.25,"lr":0.001,"grad_norm":1.5,"tokens_per_s":1000.5,"mfu":0.5,"step_s":0.5,"elapsed_s":0.5}"#,
        #"{"step":2,"loss":4.125,"lr":0.001,"grad_norm":1.25,"tokens_per_s":1100.25,"mfu":0.55,"step_s":0.5,"elapsed_s":1.0}"#,
        #"{"step":2,"eval_s":0.75,"perplexity.ppl":40.5,"perplexity.tokens":100}"#,
        #"{"step":3,"loss":4.5,"lr":0.0005,"grad_norm":null,"tokens_per_s":900.0,"mfu":0.45,"step_s":0.6,"elapsed_s":1.6}"#,
    ]

    func summaryFollowsTheLines() throws {
        let registry = try RunRegistry(database: open())
        let n = try registry.register(Self.start("/runs/a"), continuing: false)
        try registry.appendMetrics(run: n, from: 0, lines: Self.lines)
        let s = try XCTUnwrap(registry.runs(RunFilter(experiment: "exp-a")).first { $0.number == n })
        XCTAssertEqual(s.status, .running)
        XCTAssertEqual(s.steps, 3)
        XCTAssertEqual(s.lastLoss, 4.5)
        XCTAssertEqual(s.minLoss, 4.125)
        XCTAssertEqual(s.tokens, 3 * 512)
        XCTAssertEqual(s.tokensPerS, 900)
        XCTAssertEqual(s.mfu, 0.45)
        XCTAssertEqual(s.eval, ["perplexity.ppl": 40.5, "perplexity.tokens": 100])
        XCTAssertEqual(try registry.metricsLines(run: n), Self.lines)
        XCTAssertEqual(try registry.metricsLines(run: n, from: 2), Array(Self.lines[2...]))
        XCTAssertTrue(try registry.runs(RunFilter(experiment: "other")).isEmpty)
        XCTAssertEqual(try registry.runs(RunFilter(status: .running)).map(\.number), [n])
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: JSONEncoder.registry.encode([s])) as? [[String: Any]]
        ).first!
        for key in [
            "number", "name", "experiment", "status", "run_dir", "steps", "last_loss", "min_loss", "tokens",
            "started_at",
        ] {
            XCTAssertNotNil(json[key], key)
        }
        XCTAssertEqual(json["run_dir"] as? String, "/runs/a")
        XCTAssertTrue(json["ended_at"] is NSNull, "a missing value is null, not left out")
        let detail = try XCTUnwrap(registry.run(n))
        XCTAssertEqual(detail.evals.map(\.name), ["perplexity.ppl", "perplexity.tokens"])
        XCTAssertEqual(detail.configValues["model.hidden_size"], "64")
        let encoded = try JSONEncoder.registry.encode(detail)
        let decoded = try JSONDecoder.registry.decode(RunDetail.self, from: encoded)
        XCTAssertEqual(try JSONEncoder.registry.encode(decoded), encoded)
        XCTAssertEqual(decoded.evals, detail.evals)
    }

    /// A resumed run truncates its metrics.jsonl: the lines from there on are replaced and the summary recomputed.
    func rewriteReplacesTheTail() throws {
        let registry = try RunRegistry(database: open())
        let n = try registry.register(Self.start("/runs/b"), continuing: false)
        try registry.appendMetrics(run: n, from: 0, lines: Self.lines)
        let replacement =
            #"{"step":2,"loss":6.0,"lr":0.001,"grad_norm":1.0,"tokens_per_s":1.0,"mfu":0.1,"step_s":1,"elapsed_s":2}"#
        try registry.appendMetrics(run: n, from: 1, lines: [replacement])
        XCTAssertEqual(try registry.metricsLines(run: n), [Self.lines[0], replacement])
        let s = try XCTUnwrap(registry.run(n)).summary
        XCTAssertEqual(s.steps, 2)
        XCTAssertEqual(s.lastLoss, 6.0)
        XCTAssertEqual(s.minLoss, 5.25)
        XCTAssertEqual(s.eval, [:])
    }

    func resumedRunsKeepTheirNumber() throws {
        let registry = try RunRegistry(database: open())
        let first = try registry.register(Self.start("/runs/c"), continuing: false)
        try registry.finish(run: first, status: .killed)
        XCTAssertEqual(try registry.register(Self.start("/runs/c"), continuing: true), first)
        XCTAssertEqual(try registry.run(first)?.summary.status, .running)
        let second = try registry.register(Self.start("/runs/c"), continuing: false)
        XCTAssertGreaterThan(second, first)
        XCTAssertEqual(try registry.latestRun(in: "/runs/c"), second)
        try registry.addCheckpoint(run: second, step: 2, path: "/runs/c/checkpoints/step-0000002")
        try registry.finish(run: second, status: .failed, error: "out of memory")
        let detail = try XCTUnwrap(registry.run(second))
        XCTAssertEqual(detail.summary.status, .failed)
        XCTAssertEqual(detail.error, "out of memory")
        XCTAssertNotNil(detail.summary.endedAt)
        XCTAssertEqual(detail.checkpoints.map(\.step), [2])
    }

    /// A run whose process is gone from this host, or whose heartbeat is stale, is `killed`.
    func deadRunsAreKilled() throws {
        let registry = try RunRegistry(database: open())
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let dead = try registry.register(Self.start("/runs/d", pid: Int(gone.processIdentifier)), continuing: false)
        let alive = try registry.register(Self.start("/runs/e", pid: Int(getpid())), continuing: false)
        let remote = try registry.register(Self.start("/runs/f", host: "elsewhere", pid: 1), continuing: false)
        let statuses = Dictionary(uniqueKeysWithValues: try registry.runs().map { ($0.number, $0.status) })
        XCTAssertEqual(statuses[dead], .killed)
        XCTAssertEqual(statuses[alive], .running)
        XCTAssertEqual(statuses[remote], .running)
        try registry.reapDeadRuns(now: Date().addingTimeInterval(RunRegistry.staleAfter + 5))
        XCTAssertEqual(try registry.run(remote)?.summary.status, .killed)
        XCTAssertNotNil(try registry.run(remote)?.error)
    }

    /// Several writers at once (each its own connection, as separate `kumo train` processes): every run
    /// gets its own number and keeps every line in order.
    func concurrentWritersKeepEveryLine() throws {
        let writers = 4
        let runsEach = 3
        let linesEach = 15
        let failures = NSLock()
        var errors: [String] = []
        var numbers: [Int] = []
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            do {
                let registry = try RunRegistry(database: open())
                for r in 0..<runsEach {
                    let n = try registry.register(Self.start("/runs/w\(w)-\(r)"), continuing: false)
                    failures.withLock { numbers.append(n) }
                    for i in 0..<linesEach {
                        try registry.appendMetrics(
                            run: n, from: i, lines: [#"{"step":\#(i + 1),"loss":\#(Double(w) + 0.5)}"#])
                    }
                    try registry.finish(run: n, status: .completed)
                }
            } catch {
                failures.withLock { errors.append("\(error)") }
            }
        }
        XCTAssertEqual(errors, [])
        XCTAssertEqual(Set(numbers).count, writers * runsEach)
        let registry = try RunRegistry(database: open())
        for n in numbers {
            let lines = try registry.metricsLines(run: n)
            XCTAssertEqual(lines.count, linesEach)
            XCTAssertEqual(lines.last?.hasPrefix(#"{"step":\#(linesEach),"#), true)
            XCTAssertEqual(try registry.run(n)?.summary.status, .completed)
        }
    }

    /// Opening twice migrates once; a database of a newer schema is refused, naming its version.
    func migrationsRunOnce() throws {
        _ = try RunRegistry(database: open())
        let database = try open()
        _ = try RunRegistry(database: database)
        let versions = try database.read { try $0.execute("SELECT version FROM schema_migrations") }
        XCTAssertEqual(versions.count, 1)
        try database.write { db in
            try db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        }
        XCTAssertThrowsError(try RunRegistry(database: open())) { error in
            XCTAssertTrue("\(error)".contains("schema version 99"), "\(error)")
        }
    }
}
