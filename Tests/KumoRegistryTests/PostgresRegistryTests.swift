import Foundation
import KumoRegistry
import XCTest

/// The registry on a real PostgreSQL server (`PostgresServer`), with the checks SQLite passes, plus
/// what only a server has: URLs, placeholders, an unreachable server.
final class PostgresRegistryTests: XCTestCase {
    private func checks() throws -> RegistryChecks {
        let url = try PostgresServer.shared().createDatabase()
        return RegistryChecks { try PostgresDatabase(url: url) }
    }

    func testSummaryFollowsTheLines() throws { try checks().summaryFollowsTheLines() }
    func testRewriteReplacesTheTail() throws { try checks().rewriteReplacesTheTail() }
    func testResumedRunsKeepTheirNumber() throws { try checks().resumedRunsKeepTheirNumber() }
    func testDeadRunsAreKilled() throws { try checks().deadRunsAreKilled() }
    func testConcurrentWritersKeepEveryLine() throws { try checks().concurrentWritersKeepEveryLine() }
    func testMigrationsRunOnce() throws { try checks().migrationsRunOnce() }

    func testKumoRegistryNamesThePostgresDatabase() throws {
        let url = try PostgresServer.shared().createDatabase()
        let registry = try RunRegistry.open(environment: ["KUMO_REGISTRY": url, "KUMO_HOME": "/nonexistent"])
        XCTAssertEqual(registry.database.dialect, .postgresql)
        XCTAssertEqual(try registry.runs(), [])
    }

    func testAnUnreachableServerIsNamed() {
        XCTAssertThrowsError(try PostgresDatabase(url: "postgresql://kumo:secret@127.0.0.1:1/registry")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("127.0.0.1:1"), text)
            XCTAssertFalse(text.contains("secret"), "the password is not shown: \(text)")
        }
        XCTAssertThrowsError(try PostgresDatabase(url: "mysql://x")) { error in
            XCTAssertTrue("\(error)".contains("postgresql://"), "\(error)")
        }
    }
}

/// `kumo train` with `KUMO_REGISTRY` naming the server records there, and `kumo runs` reads it back.
final class PostgresTrainingTests: XCTestCase {
    private static let kumo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/release/kumo").path

    private func kumo(_ args: [String], environment: [String: String]) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.kumo)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func testTrainingRecordsItsRunInPostgres() throws {
        let url = try PostgresServer.shared().createDatabase()
        let dir = NSTemporaryDirectory() + "kumo-pg-run-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = ["KUMO_REGISTRY": url, "KUMO_HOME": dir + "/home"]
        let trained = try kumo(
            [
                "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
                "--set", "train.steps=3", "--set", "model.vocab_size=256", "--set", "train.threads=1",
                "--run-dir", dir + "/run", "--experiment", "pg",
            ], environment: environment)
        XCTAssertEqual(trained.status, 0)
        let listed = try kumo(["runs", "list", "--json"], environment: environment)
        let runs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(listed.out.utf8)) as? [[String: Any]])
        XCTAssertEqual(runs.count, 1)
        XCTAssertEqual(runs.first?["experiment"] as? String, "pg")
        XCTAssertEqual(runs.first?["status"] as? String, "completed")
        XCTAssertEqual(runs.first?["steps"] as? Int, 3)
        let exported = try kumo(["runs", "export", "1", "--format", "jsonl"], environment: environment)
        XCTAssertEqual(exported.out, try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/home/registry.sqlite"), "nothing went to SQLite")
    }
}
