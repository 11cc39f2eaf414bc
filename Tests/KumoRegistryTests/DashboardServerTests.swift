import Foundation
import XCTest

@testable import KumoRegistry

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `kumo dashboard` end to end: a registry in a temporary KUMO_HOME, the release binary serving it,
/// its JSON API read back, and its pages drawn by headless Chromium.
final class DashboardServerTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/release/kumo").path

    /// Training lines with a loss spike at step 40 and memory keys, and two evaluation lines.
    static let lines: [String] =
        (1...80).map { step in
            let loss = step == 40 ? 9.5 : 6.0 * exp(-Double(step) / 40) + 2
            return #"{"step":\#(step),"loss":\#(loss),"lr":0.0003,"grad_norm":1.25,"tokens_per_s":5120.5,"#
                + #""mfu":0.031,"step_s":0.05,"elapsed_s":\#(Double(step) * 0.05),"memory.peak_rss_bytes":1.5e9}"#
        } + [#"{"step":40,"eval_s":0.5,"val_loss":3.25}"#, #"{"step":80,"eval_s":0.5,"val_loss":2.5}"#]

    func testDashboardServesTheRegistryAndDrawsPages() async throws {
        let home = NSTemporaryDirectory() + "kumo-dashboard-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: home) }
        let registry = try RunRegistry(database: SQLiteDatabase(path: home + "/registry.sqlite"))
        let first = try registry.register(start("alpha", experiment: "exp-a", hidden: "64"), continuing: false)
        try registry.appendMetrics(run: first, from: 0, lines: Self.lines)
        let second = try registry.register(start("beta", experiment: "exp-b", hidden: "128"), continuing: false)
        try registry.appendMetrics(run: second, from: 0, lines: Array(Self.lines.prefix(50)))
        try registry.finish(run: second, status: .completed)

        let base = try startDashboard(home: home)
        let runs = try JSONDecoder.registry.decode([RunSummary].self, from: try await get(base + "/api/runs").1)
        XCTAssertEqual(runs.map(\.name), ["alpha", "beta"])
        XCTAssertEqual(runs.map(\.status), [.running, .completed])
        XCTAssertEqual(runs[0].steps, 80)
        XCTAssertEqual(runs[0].lastLoss, 6.0 * exp(-2) + 2)
        XCTAssertEqual(runs[0].minLoss, 6.0 * exp(-2) + 2)
        XCTAssertEqual(runs[0].eval["val_loss"], 2.5)
        let completed = try await get(base + "/api/runs?status=completed&experiment=exp-b").1
        XCTAssertEqual(try JSONDecoder.registry.decode([RunSummary].self, from: completed).map(\.number), [second])

        let detail = try JSONDecoder.registry.decode(RunDetail.self, from: try await get(base + "/api/runs/1").1)
        XCTAssertEqual(detail.configValues["model.hidden_size"], "64")
        XCTAssertEqual(
            detail.evals.map { "\($0.step) \($0.name) \($0.value ?? .nan)" }, ["40 val_loss 3.25", "80 val_loss 2.5"])

        let (status, metrics) = try await get(base + "/api/runs/1/metrics")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(String(decoding: metrics, as: UTF8.self), "[" + Self.lines.joined(separator: ",") + "]")
        XCTAssertEqual((try JSONSerialization.jsonObject(with: metrics) as? [Any])?.count, Self.lines.count)
        let tail = try await get(base + "/api/runs/1/metrics?from=78").1
        XCTAssertEqual(String(decoding: tail, as: UTF8.self), "[" + Self.lines[78...].joined(separator: ",") + "]")

        let (missing, error) = try await get(base + "/api/runs/99")
        XCTAssertEqual(missing, 404)
        XCTAssertNotNil((try JSONSerialization.jsonObject(with: error) as? [String: Any])?["error"] as? String)

        try await checkPages(base)
        let port = String(base.split(separator: ":").last!)
        let busy = try run(Self.binary, ["dashboard", "--port", port], environment: ["KUMO_HOME": home])
        XCTAssertEqual(busy.status, 1)
        XCTAssertTrue(busy.err.contains("port \(port) on 127.0.0.1 is in use"), busy.err)
    }

    /// The HTML pages and chart files, and screenshots of the three pages that are not blank.
    func checkPages(_ base: String) async throws {
        let table = String(
            decoding: try await get(base + "/?group=model.hidden_size&sort=min_loss&desc=1").1, as: UTF8.self)
        for text in [
            "alpha", "beta", "model.hidden_size = 64", "model.hidden_size = 128", "/compare?runs=",
            #"<a href="/?group=model.hidden_size&amp;sort=last_loss">last loss</a>"#,
            #"<a href="/?group=model.hidden_size&amp;sort=min_loss">min loss ▼</a>"#, ">tokens/s<", ">MFU<",
            ">val_loss<",
        ] {
            XCTAssertTrue(table.contains(text), "the run table lacks \(text)")
        }
        let page = String(decoding: try await get(base + "/runs/1?x=tokens&log=1").1, as: UTF8.self)
        for id in ["loss", "lr", "grad_norm", "tokens_per_s", "mfu", "memory", "eval.val_loss"] {
            XCTAssertTrue(page.contains("/runs/1/chart/\(id).svg"), "the run page lacks chart \(id)")
        }
        XCTAssertTrue(page.contains("const live = {\"1\":82}"), "a running run's page polls from its last line")
        let (svgStatus, svg) = try await get(base + "/runs/1/chart/loss.svg?log=1&x=time")
        XCTAssertEqual(svgStatus, 200)
        XCTAssertTrue(String(decoding: svg, as: UTF8.self).contains("log scale"))
        let compared = try await get(base + "/compare/chart/memory.svg?runs=1,2").0
        XCTAssertEqual(compared, 200)
        let unknown = try await get(base + "/runs/1/chart/nonsense.svg").0
        XCTAssertEqual(unknown, 404)
        let nothingCompared = try await get(base + "/compare").0
        XCTAssertEqual(nothingCompared, 400)
        for path in ["/", "/runs/1", "/compare?runs=1,2"] {
            let stats = try screenshot(base + path)
            XCTAssertGreaterThanOrEqual(stats.colours, 8, "\(path) looks blank: \(stats)")
            XCTAssertGreaterThan(stats.nonWhite, 0.02, "\(path) looks blank: \(stats)")
        }
    }

    private func start(_ name: String, experiment: String, hidden: String) -> RunStart {
        RunStart(
            name: name, experiment: experiment, runDirectory: "/tmp/\(name)",
            config: "[model]\nhidden_size = \(hidden)\n",
            configValues: ["model.hidden_size": hidden], configHash: "hash-\(hidden)", binaryHash: nil,
            host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), layout: ["ranks": 1], tokensPerStep: 512,
            totalSteps: 100, startedAt: Date())
    }

    /// Starts `kumo dashboard --port 0` over `home` (stopped when the test ends); its base URL.
    private func startDashboard(home: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw Failure("\(Self.binary) is missing: run `swift build -c release` first (make test does)")
        }
        let log = home + "/dashboard.out"
        XCTAssertTrue(FileManager.default.createFile(atPath: log, contents: nil), log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["dashboard", "--port", "0"]
        process.environment = ProcessInfo.processInfo.environment.merging(["KUMO_HOME": home]) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: log)
        try process.run()
        addTeardownBlock { if process.isRunning { process.terminate() } }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) {
                return String(text[r])
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure("kumo dashboard printed no URL: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    private func get(_ url: String) async throws -> (Int, Data) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Headless Chromium's 1280×900 screenshot of `url`: its distinct colours and non-white share.
    private func screenshot(_ url: String) throws -> (colours: Int, nonWhite: Double) {
        let chromium = "/usr/bin/chromium"
        guard FileManager.default.isExecutableFile(atPath: chromium) else {
            throw Failure("\(chromium) is missing: run `make deps` (it installs Debian's chromium package)")
        }
        let dir = NSTemporaryDirectory() + "kumo-shot-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let png = dir + "/page.png"
        let shot = try run(
            chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(dir)/profile",
                "--screenshot=\(png)", "--window-size=1280,900", url,
            ])
        XCTAssertEqual(shot.status, 0, "chromium failed on \(url): \(shot.err)")
        let stats = try run("/usr/bin/python3", [Self.root.appendingPathComponent("scripts/png_stats.py").path, png])
        XCTAssertEqual(stats.status, 0, "scripts/png_stats.py failed: \(stats.err)")
        let object = try JSONSerialization.jsonObject(with: Data(stats.out.utf8)) as? [String: Any]
        return ((object?["colours"] as? Int) ?? 0, (object?["non_white"] as? Double) ?? 0)
    }

    /// Runs `executable` to its end (at most 120 s) with `environment` added; its exit status, standard
    /// output and standard error.
    private func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (
        status: Int32, out: String, err: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let errPath = NSTemporaryDirectory() + "kumo-stderr-\(UUID().uuidString)"
        XCTAssertTrue(FileManager.default.createFile(atPath: errPath, contents: nil), errPath)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
        let timer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: timer)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), err)
    }
}

/// A test's failure, with what went wrong.
private struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
