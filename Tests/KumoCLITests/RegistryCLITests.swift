import Foundation
import XCTest

/// `kumo train` records its runs in the registry; `kumo runs` lists, shows, compares, exports and
/// imports them (each test with its own KUMO_HOME).
final class RegistryCLITests: XCTestCase {
    private static let tiny = [
        "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
        "--set", "train.micro_batch_size=2", "--set", "train.threads=1", "--set", "model.vocab_size=256",
    ]

    private func train(
        _ dir: String, home: String, steps: Int = 4, _ extra: [String] = [], environment: [String: String] = [:]
    )
        throws -> (status: Int32, out: String, err: String)
    {
        try KumoProcess.run(
            Self.tiny + ["--set", "train.steps=\(steps)", "--run-dir", dir] + extra,
            environment: ["KUMO_HOME": home].merging(environment) { $1 }, timeout: 300)
    }

    private func runs(_ args: [String], home: String, environment: [String: String] = [:]) throws -> String {
        let r = try KumoProcess.run(
            ["runs"] + args, environment: ["KUMO_HOME": home].merging(environment) { $1 }, timeout: 60)
        XCTAssertEqual(r.status, 0, "kumo runs \(args): \(r.err)")
        return r.out
    }

    private func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    private func list(home: String, _ args: [String] = []) throws -> [[String: Any]] {
        try XCTUnwrap(json(runs(["list", "--json"] + args, home: home)) as? [[String: Any]])
    }

    private func metricsText(_ dir: String) throws -> [String] {
        try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func testTrainRecordsItsRunAndEveryCommandReadsIt() throws {
        let tmp = try KumoProcess.temporaryDirectory(for: self)
        let home = tmp + "/home"
        let r = try train(tmp + "/a", home: home, ["--experiment", "sweep"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("run 1 in the run registry"), r.err)
        let listed = try list(home: home)
        XCTAssertEqual(listed.count, 1)
        let run = listed[0]
        XCTAssertEqual(run["number"] as? Int, 1)
        XCTAssertEqual(run["experiment"] as? String, "sweep")
        XCTAssertEqual(run["status"] as? String, "completed")
        XCTAssertEqual(run["steps"] as? Int, 4)
        XCTAssertEqual(run["tokens"] as? Int, 4 * 2 * 32)
        XCTAssertEqual(run["run_dir"] as? String, tmp + "/a")
        let lines = try metricsText(tmp + "/a")
        let last = try XCTUnwrap(json(lines.last!) as? [String: Any])
        XCTAssertEqual(run["last_loss"] as? Double, last["loss"] as? Double)
        XCTAssertEqual(try runs(["export", "1", "--format", "jsonl"], home: home), lines.map { $0 + "\n" }.joined())
        let csv = try runs(["export", "1"], home: home).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + lines.count)
        XCTAssertTrue(csv[0].hasPrefix("step,") && csv[0].contains(",loss,"), String(csv[0]))
        let shown = try XCTUnwrap(json(runs(["show", "1", "--json"], home: home)) as? [String: Any])
        XCTAssertTrue((shown["config"] as? String)?.contains("experiment = \"sweep\"") == true)
        XCTAssertEqual((shown["layout"] as? [String: Int])?["ranks"], 1)
        XCTAssertTrue(try runs(["show", "1"], home: home).contains("run 1: a (experiment sweep), completed"))
        XCTAssertTrue(try list(home: home, ["--experiment", "other"]).isEmpty)
        XCTAssertEqual(try list(home: home, ["--status", "completed"]).count, 1)
    }

    func testImportBackfillsARunMadeWithoutTheRegistry() throws {
        let tmp = try KumoProcess.temporaryDirectory(for: self)
        let home = tmp + "/home"
        XCTAssertEqual(try train(tmp + "/old", home: home, ["--set", "run.registry=false"]).status, 0)
        XCTAssertTrue(try list(home: home).isEmpty)
        // A run made before the registry existed: its config.toml has no [run] section.
        let config = tmp + "/old/config.toml"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let withoutRun = try XCTUnwrap(text.components(separatedBy: "[run]\n").first)
        try withoutRun.write(toFile: config, atomically: true, encoding: .utf8)
        XCTAssertTrue(try runs(["import", tmp + "/old"], home: home).contains("run 1: \(tmp)/old (completed)"))
        XCTAssertTrue(
            try runs(["import", tmp + "/old"], home: home).contains("run 1:"), "importing again keeps the number")
        let listed = try list(home: home)
        XCTAssertEqual(listed.count, 1)
        XCTAssertEqual(listed.first?["steps"] as? Int, 4)
        XCTAssertEqual(listed.first?["experiment"] as? String, "default")
        XCTAssertEqual(
            try runs(["export", "1", "--format", "jsonl"], home: home),
            try String(contentsOfFile: tmp + "/old/metrics.jsonl", encoding: .utf8))
        let bad = try KumoProcess.run(["runs", "import", tmp], environment: ["KUMO_HOME": home])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.contains("is not a run directory"), bad.err)
    }

    func testAKilledRunIsMarkedKilled() throws {
        let tmp = try KumoProcess.temporaryDirectory(for: self)
        let home = tmp + "/home"
        let p = try KumoProcess.start(
            Self.tiny + ["--set", "train.steps=100000", "--run-dir", tmp + "/k"], environment: ["KUMO_HOME": home],
            stderrPath: tmp + "/err")
        wait(for: "a recorded step") {
            ((try? list(home: home))?.first?["steps"] as? Int ?? 0) > 0
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let killed = try list(home: home, ["--status", "killed"])
        XCTAssertEqual(killed.map { $0["run_dir"] as? String }, [tmp + "/k"])
    }

    func testConcurrentRunsGetTheirOwnNumbers() throws {
        let tmp = try KumoProcess.temporaryDirectory(for: self)
        let home = tmp + "/home"
        let started = try (0..<3).map { i in
            try KumoProcess.start(
                Self.tiny + ["--set", "train.steps=6", "--run-dir", tmp + "/c\(i)"], environment: ["KUMO_HOME": home],
                stderrPath: tmp + "/err\(i)")
        }
        for p in started {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
        let listed = try list(home: home)
        XCTAssertEqual(Set(listed.compactMap { $0["number"] as? Int }), [1, 2, 3])
        XCTAssertEqual(Set(listed.compactMap { $0["run_dir"] as? String }), Set((0..<3).map { tmp + "/c\($0)" }))
        XCTAssertEqual(listed.compactMap { $0["status"] as? String }, ["completed", "completed", "completed"])
        for run in listed {
            let n = try XCTUnwrap(run["number"] as? Int)
            let dir = try XCTUnwrap(run["run_dir"] as? String)
            XCTAssertEqual(
                try runs(["export", "\(n)", "--format", "jsonl"], home: home),
                try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8))
        }
    }

    func testAnUnreachableRegistryNeverStopsTraining() throws {
        let tmp = try KumoProcess.temporaryDirectory(for: self)
        let r = try train(
            tmp + "/u", home: tmp + "/home", environment: ["KUMO_REGISTRY": "postgresql://kumo@127.0.0.1:1/registry"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("run registry unreachable"), r.err)
        XCTAssertTrue(r.err.contains("kumo runs import \(tmp)/u"), r.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp + "/u/model.safetensors"))
    }

    func testCompareShowsTheDifferingKeysAndLossesAtEqualSteps() throws {
        let tmp = try KumoProcess.temporaryDirectory(for: self)
        let home = tmp + "/home"
        XCTAssertEqual(try train(tmp + "/x", home: home, steps: 5).status, 0)
        XCTAssertEqual(try train(tmp + "/y", home: home, steps: 5, ["--set", "optim.lr=0.01"]).status, 0)
        let c = try XCTUnwrap(
            json(runs(["compare", "1", "2", "--json", "--steps", "3"], home: home)) as? [String: Any])
        let diff = try XCTUnwrap(c["config_diff"] as? [String: [String]])
        XCTAssertEqual(diff["optim.lr"]?.count, 2)
        XCTAssertNil(diff["train.steps"])
        XCTAssertEqual(c["steps"] as? [Int], [1, 3, 5])
        let values = try XCTUnwrap(c["values"] as? [String: [Double]])
        let first = try XCTUnwrap(json(metricsText(tmp + "/x")[0]) as? [String: Any])
        XCTAssertEqual(values["1"]?.first, first["loss"] as? Double)
        XCTAssertNotEqual(values["1"]?.last, values["2"]?.last)
        XCTAssertTrue(try runs(["compare", "1", "2"], home: home).contains("optim.lr"))
    }
}
