import Foundation
import XCTest

/// `[train.spike]` through `kumo train`: events reach metrics.jsonl, train.log and standard error.
final class SpikeGuardCLITests: XCTestCase {
    /// Trains 8 steps with the guard on, on `ranks` ranks (mpirun above one).
    private func train(_ extra: [String], ranks: Int = 1) throws -> (
        status: Int32, err: String, log: String, metrics: String
    ) {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let base = [
            "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
            "--set", "train.micro_batch_size=2", "--set", "train.threads=1", "--set", "train.steps=8",
            "--set", "train.spike.enabled=true", "--set", "train.spike.min_history=3", "--run-dir", dir,
        ]
        let r = ranks == 1 ? try KumoProcess.run(base + extra) : try KumoProcess.runMPI(ranks: ranks, base + extra)
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

    /// Every rank reloads the checkpoint rank 0 picked: the run on `ranks` ranks with `layout`
    /// logs the same rollback as one rank and its losses, rollback included, match one rank's
    /// within 1e-5 relative.
    private func assertRollbackMatchesOneRank(_ layout: [String], ranks: Int, _ label: String) throws {
        let args = [
            "--set", "checkpoint.every=2", "--set", "train.spike.policy=rollback", "--set", "train.global_batch_size=4",
            "--set", "train.spike.debug_inject=[\"4:nan\"]",
        ]
        func losses(_ metrics: String) -> [Double] {
            metrics.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double
            }
        }
        let one = try train(args)
        let many = try train(args + layout.flatMap { ["--set", $0] }, ranks: ranks)
        XCTAssertEqual(many.status, 0, many.err)
        XCTAssertTrue(many.err.contains("step 5: spike guard rollback: non-finite value"), many.err)
        XCTAssertTrue(many.log.contains("rollback: restored") && many.log.contains("step-0000004 at step 4"), many.log)
        let (a, b) = (losses(many.metrics), losses(one.metrics))
        XCTAssertEqual(a.count, b.count, many.metrics)
        XCTAssertGreaterThanOrEqual(a.count, 8, many.metrics)
        let error = zip(a, b).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
        print("\(label) rollback vs one rank: max relative loss error \(error)")
        XCTAssertLessThanOrEqual(error, 1e-5, "\(label): max relative loss error \(error)")
    }

    func testRollbackOfANaNOnTwoZeRO2RanksRestoresTheCheckpointOnEveryRank() throws {
        try assertRollbackMatchesOneRank(["parallel.zero_stage=2"], ranks: 2, "2-rank ZeRO-2")
    }

    /// Each stage's tensor slices are read back from the whole-model checkpoint.
    func testRollbackOfANaNAtTensorTimesPipelineRestoresEveryShard() throws {
        try assertRollbackMatchesOneRank(["parallel.tensor=2", "parallel.pipeline=2"], ranks: 4, "tp=2 × pp=2")
    }

    func testSkipOfASpikeIsLoggedAndTheRunFinishes() throws {
        let r = try train(["--set", "train.spike.debug_inject=[\"5:1000\"]"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.log.contains("step 6: spike guard skip: loss"), r.log)
        XCTAssertTrue(r.metrics.contains("{\"step\":6,") && r.metrics.contains("\"event\":\"skip\""), r.metrics)
    }
}
