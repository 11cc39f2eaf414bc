import Foundation
import XCTest

@testable import KumoTrain

final class SpikeGuardTests: XCTestCase {
    private func guarded(_ extra: [String]) throws -> RunConfig {
        try CheckpointFixture.config(
            ["train.steps=10", "train.spike.enabled=true", "train.spike.min_history=3"] + extra)
    }

    /// Runs a session in a fresh run directory; the trainer and the metrics lines, parsed and as text.
    private func session(_ c: RunConfig) throws -> (trainer: Trainer, lines: [[String: Any]], text: [Substring]) {
        let run = try CheckpointFixture.directory(for: self)
        let dir = try RunDirectory(lock: RunLock.claim(run, use: .new), config: c)
        let trainer = try CheckpointFixture.trainer(c)
        try TrainingSession(trainer: trainer, directory: dir, say: { _ in }).run(progress: { _ in })
        let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
        let lines = try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (trainer, lines, text.split(separator: "\n"))
    }

    func testSkipPolicyLeavesTheWeightsUntouchedOnAnInjectedSpikeAndNaN() throws {
        let trainer = try CheckpointFixture.trainer(try guarded(["train.spike.debug_inject=[\"5:1000\", \"8:nan\"]"]))
        for step in 1...10 {
            let before = trainer.model.params.array
            let m = try trainer.trainStep()
            let changed = trainer.model.params.array != before
            if step == 6 || step == 9 {
                XCTAssertEqual(m.event?.action, .skip, "step \(step)")
                XCTAssertFalse(changed, "step \(step) was skipped but the weights changed")
            } else {
                XCTAssertNil(m.event, "step \(step): \(m.event?.reason ?? "")")
                XCTAssertTrue(changed, "step \(step)")
            }
        }
        XCTAssertEqual(trainer.optimizer.step, 8)
        XCTAssertTrue(trainer.model.params.array.allSatisfy(\.isFinite))
    }

    func testSkipEventsAreLoggedInMetrics() throws {
        let (_, lines, _) = try session(try guarded(["train.spike.debug_inject=[\"5:1000\", \"8:nan\"]"]))
        let events = lines.filter { $0["event"] != nil }
        XCTAssertEqual(events.map { $0["step"] as? Int }, [6, 9])
        XCTAssertEqual(events.map { $0["event"] as? String }, ["skip", "skip"])
        XCTAssertTrue((events[0]["reason"] as? String)?.contains("running median") == true, "\(events[0])")
        XCTAssertTrue((events[1]["reason"] as? String)?.contains("non-finite") == true, "\(events[1])")
        XCTAssertTrue(events[1]["loss"] is NSNull, "a NaN loss is written as null: \(events[1])")
        XCTAssertEqual(lines.filter { $0["event"] == nil }.count, 8)
    }

    func testRollbackRestoresTheLastCheckpointSkipsTheOffendingBatchesAndLowersTheLR() throws {
        let c = try guarded([
            "checkpoint.every=3", "train.spike.policy=rollback", "train.spike.lr_factor=0.5",
            "train.spike.debug_inject=[\"6:1000\"]",
        ])
        let (trainer, lines, text) = try session(c)
        let rollback = try XCTUnwrap(lines.first { $0["event"] as? String == "rollback" })
        XCTAssertEqual(rollback["step"] as? Int, 7)
        let restored = try XCTUnwrap(lines.first { $0["event"] as? String == "restored" })
        XCTAssertEqual(restored["step"] as? Int, 6)
        XCTAssertEqual(restored["skipped_samples"] as? Int, 2)
        XCTAssertEqual(restored["lr_scale"] as? Double, 0.5)
        XCTAssertEqual(trainer.step, 10)
        XCTAssertEqual(trainer.dataPosition, 22)
        // The continuation equals a run that trains 6 steps, skips batch 6 and halves the learning rate.
        let reference = try CheckpointFixture.trainer(c)
        for _ in 0..<6 { _ = try reference.trainStep() }
        reference.dataPosition += 2
        reference.lrScale = 0.5
        let expected = try (7...10).map { _ in try reference.trainStep() }
        // Compared as written (shortest round-trip text): JSONSerialization may round the last digit.
        let after = Array(text.drop { !$0.contains("\"restored\"") }.dropFirst())
        XCTAssertEqual(after.map { field($0, "step") }, ["7", "8", "9", "10"])
        XCTAssertEqual(after.map { field($0, "loss") }, expected.map { "\($0.loss)" })
        XCTAssertEqual(after.map { field($0, "lr") }, expected.map { "\($0.lr)" })
        XCTAssertEqual(trainer.model.params.array, reference.model.params.array)
    }

    func testRollbackBeforeAnyCheckpointReturnsToTheInitialWeights() throws {
        let (trainer, lines, _) = try session(
            try guarded(["checkpoint.every=5", "train.spike.policy=rollback", "train.spike.debug_inject=[\"1:nan\"]"]))
        let restored = try XCTUnwrap(lines.first { $0["event"] as? String == "restored" })
        XCTAssertEqual(restored["step"] as? Int, 0)
        XCTAssertEqual(restored["skipped_samples"] as? Int, 4)
        XCTAssertEqual(trainer.step, 10)
        XCTAssertTrue(trainer.model.params.array.allSatisfy(\.isFinite))
    }

    func testDisabledGuardStillStopsTheRunOnANaN() throws {
        let trainer = try CheckpointFixture.trainer(
            try CheckpointFixture.config(["train.steps=5", "train.spike.debug_inject=[\"2:nan\"]"]))
        _ = try trainer.trainStep()
        _ = try trainer.trainStep()
        XCTAssertThrowsError(try trainer.trainStep()) { error in
            XCTAssertEqual((error as? NonFiniteError)?.step, 3, "\(error)")
        }
    }

    func testTooManySkipsInARowStopTheRun() throws {
        let c = try guarded([
            "train.spike.max_skips_in_row=2", "train.spike.debug_inject=[\"3:nan\", \"4:nan\", \"5:nan\"]",
        ])
        XCTAssertThrowsError(try session(c)) { error in
            XCTAssertTrue(error is SpikeGuardError && "\(error)".contains("step 6"), "\(error)")
        }
    }

    func testGradientNormRatioIsASpikeOnlyWhenEnabled() throws {
        var g = SpikeGuard(settings: try guarded(["train.spike.grad_norm_threshold=3"]).train.spike)
        for _ in 0..<3 { XCTAssertNil(try g.judge(step: 1, loss: 2, gradNorm: 1)) }
        XCTAssertTrue(try g.judge(step: 4, loss: 2, gradNorm: 4)?.reason.contains("grad norm") == true)
        XCTAssertNil(try g.judge(step: 5, loss: 3.9, gradNorm: 2.9))
        XCTAssertTrue(try g.judge(step: 6, loss: 4.5, gradNorm: 1)?.reason.contains("loss 4.5") == true)
        var off = SpikeGuard(settings: try guarded([]).train.spike)
        for _ in 0..<3 { _ = try off.judge(step: 1, loss: 2, gradNorm: 1) }
        XCTAssertNil(try off.judge(step: 4, loss: 2, gradNorm: 100))
    }

    func testSpikeTableReadsFromTOMLAndBadValuesNameTheKey() throws {
        let dir = try CheckpointFixture.directory(for: self)
        let file = dir + "/c.toml"
        try """
        [model]
        preset = "tiny"
        [data]
        synthetic = true
        [train.spike]
        enabled = true
        policy = "skip"
        window = 20
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let c = try RunConfig.load(path: file, overrides: [])
        XCTAssertTrue(c.train.spike.enabled)
        XCTAssertEqual(c.train.spike.window, 20)
        try c.toml().write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try RunConfig.load(path: file, overrides: []).train.spike.window, 20)
        for (set, key) in [
            ("train.spike.policy=retry", "train.spike.policy"), ("train.spike.bogus=1", "spike.window"),
            ("train.spike.debug_inject=[\"x\"]", "BATCH:FACTOR"),
        ] {
            XCTAssertThrowsError(try CheckpointFixture.config([set])) { XCTAssertTrue("\($0)".contains(key), "\($0)") }
        }
        XCTAssertThrowsError(try guarded(["train.spike.policy=rollback"])) {
            XCTAssertTrue("\($0)".contains("checkpoint.every"), "\($0)")
        }
    }
}

/// The text of a number field of a metrics line.
private func field(_ line: Substring, _ name: String) -> String {
    guard let r = line.range(of: "\"\(name)\":") else { return "" }
    return String(line[r.upperBound...].prefix { $0 != "," && $0 != "}" })
}
