import Foundation
import XCTest

@testable import KumoTrain

/// A run directory has one writer and is not mixed with an old run; a stop request ends training
/// between steps with a checkpoint; a checkpoint of another model shape is an error, not skipped.
final class RunSafetyTests: XCTestCase {
    private func message(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testANewRunRefusesANonEmptyDirectoryNamingWhatItHolds() throws {
        let run = try CheckpointFixture.directory(for: self)
        try "{}\n".write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let m = message { try RunLock.claim(run, use: .new) }
        print("refusal: \(m)")
        XCTAssertTrue(m.contains("metrics.jsonl") && m.contains("--resume latest") && m.contains("--overwrite"), m)
        XCTAssertNoThrow(try RunLock.claim(run, use: .resume))
    }

    func testOverwriteClearsARunDirectoryButNotOneHoldingOtherFiles() throws {
        let run = try CheckpointFixture.directory(for: self)
        try FileManager.default.createDirectory(
            atPath: run + "/checkpoints/step-0000003", withIntermediateDirectories: true)
        try "x".write(toFile: run + "/config.toml", atomically: true, encoding: .utf8)
        let lock = try RunLock.claim(run, use: .overwrite)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run), [RunLock.fileName])
        _ = lock
        let other = try CheckpointFixture.directory(for: self)
        try "mine".write(toFile: other + "/notes.txt", atomically: true, encoding: .utf8)
        try "x".write(toFile: other + "/config.toml", atomically: true, encoding: .utf8)
        let m = message { try RunLock.claim(other, use: .overwrite) }
        XCTAssertTrue(m.contains("notes.txt"), m)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: other + "/config.toml"), "a refused overwrite deleted files")
    }

    func testASecondWriterIsRefusedWhileTheFirstHoldsTheDirectory() throws {
        let run = try CheckpointFixture.directory(for: self)
        var first: RunLock? = try RunLock.claim(run, use: .new)
        let m = message { try RunLock.claim(run, use: .resume) }
        XCTAssertTrue(m.contains("in use by another kumo train (pid \(getpid()))"), m)
        XCTAssertNotNil(first)
        first = nil
        XCTAssertNoThrow(try RunLock.claim(run, use: .resume), "the lock outlived its holder")
    }

    func testDefaultNamesOfRunsStartedInTheSameSecondDiffer() throws {
        let cwd = FileManager.default.currentDirectoryPath
        let dir = try CheckpointFixture.directory(for: self)
        FileManager.default.changeCurrentDirectoryPath(dir)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let a = try RunLock.claim(nil, use: .new, now: now)
        let b = try RunLock.claim(nil, use: .new, now: now)
        XCTAssertEqual(a.path, "runs/run-20270115-080000")
        XCTAssertEqual(b.path, "runs/run-20270115-080000-2")
    }

    /// A session whose stop request arrives after `after` steps; the error it stops with.
    private func stopped(after: Int, _ overrides: [String]) throws -> (TrainingStopped, String) {
        let c = try CheckpointFixture.config(["train.steps=10"] + overrides)
        let run = try CheckpointFixture.directory(for: self)
        let session = TrainingSession(
            trainer: try CheckpointFixture.trainer(c),
            directory: try RunDirectory(lock: RunLock.claim(run, use: .new), config: c),
            say: { _ in })
        session.stopRequested = { [unowned session] in session.trainer.step >= after ? SIGTERM : nil }
        do {
            try session.run(progress: { _ in })
        } catch let stop as TrainingStopped {
            return (stop, try String(contentsOfFile: run + "/train.log", encoding: .utf8))
        }
        XCTFail("the run did not stop")
        throw CheckpointError(.io, run, "not stopped")
    }

    func testAStopRequestEndsTheRunAfterTheStepWithACheckpoint() throws {
        let (stop, log) = try stopped(after: 3, ["checkpoint.every=5"])
        XCTAssertEqual(stop.step, 3)
        XCTAssertEqual(stop.exitStatus, 143)
        let checkpoint = try XCTUnwrap(stop.checkpoint)
        XCTAssertTrue(checkpoint.hasSuffix("/checkpoints/step-0000003"), checkpoint)
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint + "/COMPLETE"))
        XCTAssertTrue(log.contains("stopped by SIGTERM after step 3 of 10: wrote checkpoint"), log)
        let (unsaved, _) = try stopped(after: 2, ["checkpoint.every=0"])
        XCTAssertNil(unsaved.checkpoint)
        XCTAssertTrue(unsaved.description.contains("no checkpoint written (checkpoint.every = 0)"), unsaved.description)
    }

    func testLatestRefusesAValidCheckpointOfAnotherShapeNamingTheKeysAndSkipsADamagedOne() throws {
        let saved = try CheckpointFixture.trainer(try CheckpointFixture.config(["train.steps=10"]))
        _ = try saved.trainStep()
        let run = try CheckpointFixture.directory(for: self)
        let store = CheckpointStore(runDirectory: run)
        let path = try saved.saveCheckpoint(to: store).path
        let other = try CheckpointFixture.trainer(
            try CheckpointFixture.config(["train.steps=10", "model.intermediate_size=64"]))
        let m = message { try store.latestValid { try other.verifyCheckpoint($0) } }
        print("refusal: \(m)")
        XCTAssertTrue(m.contains("model.intermediate_size = 48 in the checkpoint, 64 in this run"), m)
        let shard = path + "/rank-00000.bin"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shard)))
        bytes[bytes.count - 1] ^= 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: shard))
        let found = try store.latestValid { try other.verifyCheckpoint($0) }
        XCTAssertNil(found.checkpoint)
        XCTAssertTrue(found.skipped.first?.contains("CRC") ?? false, "\(found.skipped)")
    }

    func testAFailedCheckpointWriteRemovesItsDirectories() throws {
        let run = try CheckpointFixture.directory(for: self)
        let pending = try CheckpointStore(runDirectory: run).begin(step: 4)
        try FileManager.default.createDirectory(atPath: pending.final, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: pending.temporary + "/rank-00000.bin"))
        pending.discard()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints"), [])
    }
}
