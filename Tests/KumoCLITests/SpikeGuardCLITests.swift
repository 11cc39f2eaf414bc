import Foundation
import XCTest

/// `[train.spike]` through `kumo train`: events reach metrics.jsonl, train.log and standard error.
final class SpikeGuardCLITests: XCTestCase {
    private func train(_ extra: [String]) throws -> (status: Int32, err: String, log: String, metrics: String) {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let base = [
            "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
            "--set", "train.micro_batch_size=2", "--set", "train.threads=1", "--set", "train.steps=8",
            "--set", "train.spike.enabled=true", "--set", "train.spike.min_history=3", "--run-dir", dir,
        ]
        let r = try KumoProcess.run(base + extra)
        let log = (try? String(contentsOfFile: dir + "/train.log", encoding: .utf8)) ?? ""
        let metrics = (try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)) ?? ""
        return (r.status, r.err, log, metrics)
    }

    func testRollbackOfANaNIsLoggedAndTheRunFinishes() throws {
        let r = try train([
            "--set", "checkpoint.every=2", "--set", "train.spike.policy=rollback", "--set", "train.spike.lr_factor=0.5",
            "--set", "train.spike.debug_inject=[\"4:nan\"]",
        ])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("step 5: spike guard rollback: non-finite value"), r.err)
        XCTAssertTrue(r.log.contains("rollback: restored") && r.log.contains("step-0000004 at step 4"), r.log)
        XCTAssertTrue(
            r.metrics.contains("\"event\":\"rollback\"") && r.metrics.contains("\"event\":\"restored\""), r.metrics)
        XCTAssertTrue(r.log.contains("finished 8 steps"), r.log)
    }

    func testSkipOfASpikeIsLoggedAndTheRunFinishes() throws {
        let r = try train(["--set", "train.spike.debug_inject=[\"5:1000\"]"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.log.contains("step 6: spike guard skip: loss"), r.log)
        XCTAssertTrue(r.metrics.contains("{\"step\":6,") && r.metrics.contains("\"event\":\"skip\""), r.metrics)
    }
}
