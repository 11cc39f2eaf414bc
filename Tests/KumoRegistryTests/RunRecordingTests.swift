import Foundation
import KumoRegistry
import XCTest

/// `RunSync` copies a run directory's metrics.jsonl as it grows (and anew when it shrinks); `RunRecorder`
/// records a run without ever stopping it, backfilling once an unreachable registry answers.
final class RunRecordingTests: XCTestCase {
    private func temporary() throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-recording-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func write(_ text: String, to path: String, append: Bool = true) throws {
        guard append, let h = FileHandle(forWritingAtPath: path) else {
            return try text.write(toFile: path, atomically: false, encoding: .utf8)
        }
        h.seekToEndOfFile()
        h.write(Data(text.utf8))
        try h.close()
    }

    func testSyncCopiesCompleteLinesAndStartsAgainWhenTheFileShrinks() throws {
        let dir = try temporary()
        let registry = try RunRegistry(database: SQLiteDatabase(path: dir + "/registry.sqlite"))
        let n = try registry.register(RegistryChecks.start(dir), continuing: false)
        let file = dir + "/metrics.jsonl"
        let lines = RegistryChecks.lines
        try write(lines[0] + "\n" + lines[1] + "\n" + lines[2].prefix(10), to: file, append: false)
        let sync = RunSync(registry: registry, run: n, directory: dir)
        XCTAssertEqual(try sync.sync(), 2)
        XCTAssertEqual(try registry.metricsLines(run: n), Array(lines[..<2]))
        try write(String(lines[2].dropFirst(10)) + "\n" + lines[3] + "\n", to: file)
        XCTAssertEqual(try sync.sync(checkpoints: [(step: 3, path: dir + "/checkpoints/step-0000003")]), 2)
        XCTAssertEqual(try registry.metricsLines(run: n), lines)
        XCTAssertEqual(try registry.run(n)?.checkpoints.map(\.step), [3])
        // A resume truncates the file after its checkpoint's step, then goes on.
        try write(lines[0] + "\n", to: file, append: false)
        XCTAssertEqual(try sync.sync(), 1)
        XCTAssertEqual(try registry.metricsLines(run: n), [lines[0]])
        XCTAssertEqual(try registry.run(n)?.summary.steps, 1)
    }

    func testTheRecorderBackfillsOnceTheRegistryAnswers() throws {
        let dir = try temporary()
        let file = dir + "/metrics.jsonl"
        try write("", to: file, append: false)
        let attempts = NSLock()
        var failuresLeft = 2
        var warnings: [String] = []
        let recorder = RunRecorder(
            start: RegistryChecks.start(dir), continuing: false, heartbeat: 0.05, retry: 0.05,
            open: {
                try attempts.withLock {
                    if failuresLeft > 0 {
                        failuresLeft -= 1
                        throw RegistryError("connection refused")
                    }
                }
                return try RunRegistry(database: SQLiteDatabase(path: dir + "/registry.sqlite"))
            },
            checkpoints: { [] }, warn: { message in attempts.withLock { warnings.append(message) } })
        recorder.begin()
        for line in RegistryChecks.lines {
            try write(line + "\n", to: file)
            recorder.changed()
            Thread.sleep(forTimeInterval: 0.1)
        }
        let number = try XCTUnwrap(recorder.finish(.completed))
        let registry = try RunRegistry(database: SQLiteDatabase(path: dir + "/registry.sqlite"))
        XCTAssertEqual(try registry.metricsLines(run: number), RegistryChecks.lines)
        XCTAssertEqual(try registry.run(number)?.summary.status, .completed)
        let said = attempts.withLock { warnings }
        XCTAssertEqual(said.count, 2, "\(said)")
        XCTAssertTrue(said[0].contains("unreachable") && said[0].contains("kumo runs import \(dir)"), said[0])
        XCTAssertTrue(said[1].contains("backfilled"), said[1])
    }

    func testARecorderThatNeverReachesTheRegistryNamesTheImport() {
        var warnings: [String] = []
        let recorder = RunRecorder(
            start: RegistryChecks.start("/runs/nowhere"), continuing: false, heartbeat: 0.05, retry: 60,
            open: { throw RegistryError("connection refused") }, checkpoints: { [] },
            warn: { warnings.append($0) })
        recorder.begin()
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertNil(recorder.finish(.completed))
        XCTAssertEqual(warnings.count, 2, "\(warnings)")
        XCTAssertTrue(warnings.last?.contains("kumo runs import /runs/nowhere") == true, "\(warnings)")
    }

    func testARegistryThatHangsHoldsUpTheEndOfTheRunOnlySoLong() {
        let warnings = NSLock()
        var said: [String] = []
        let entered = DispatchSemaphore(value: 0)
        let recorder = RunRecorder(
            start: RegistryChecks.start("/runs/hanging"), continuing: false, finishTimeout: 0.3,
            open: {
                entered.signal()
                Thread.sleep(forTimeInterval: 2)
                throw RegistryError("timed out")
            }, checkpoints: { [] }, warn: { message in warnings.withLock { said.append(message) } })
        recorder.begin()
        entered.wait()
        let t0 = Date()
        XCTAssertNil(recorder.finish(.completed))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1.5)
        let first = warnings.withLock { said.first } ?? ""
        XCTAssertTrue(first.contains("no answer within"), first)
        XCTAssertTrue(first.contains("kumo runs import /runs/hanging"), first)
    }
}
