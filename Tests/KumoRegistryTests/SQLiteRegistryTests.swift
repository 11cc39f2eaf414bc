import Foundation
import KumoRegistry
import XCTest

/// The registry on its embedded backend: one SQLite file (WAL) per test.
final class SQLiteRegistryTests: XCTestCase {
    private func checks() throws -> RegistryChecks {
        let dir = NSTemporaryDirectory() + "kumo-registry-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return RegistryChecks { try SQLiteDatabase(path: dir + "/registry.sqlite") }
    }

    func testSummaryFollowsTheLines() throws { try checks().summaryFollowsTheLines() }
    func testRewriteReplacesTheTail() throws { try checks().rewriteReplacesTheTail() }
    func testResumedRunsKeepTheirNumber() throws { try checks().resumedRunsKeepTheirNumber() }
    func testDeadRunsAreKilled() throws { try checks().deadRunsAreKilled() }
    func testConcurrentWritersKeepEveryLine() throws { try checks().concurrentWritersKeepEveryLine() }
    func testMigrationsRunOnce() throws { try checks().migrationsRunOnce() }

    func testTheDatabaseIsInWALMode() throws {
        let dir = NSTemporaryDirectory() + "kumo-registry-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = try RunRegistry.open(environment: ["KUMO_HOME": dir])
        XCTAssertEqual(registry.database.location, dir + "/registry.sqlite")
        let mode = try registry.database.read { try $0.execute("PRAGMA journal_mode") }
        XCTAssertEqual(mode.first?.values.first, .text("wal"))
    }
}
