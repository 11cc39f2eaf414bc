import Foundation
import XCTest

/// A checkpoint written with one layout loads into another (a different world size, ZeRO stage,
/// shard grouping, tensor or pipeline size): the 10 losses after the resharded resume match the
/// continuation of the run that wrote it within 1e-5 relative (the layouts sum the same
/// gradients in another order, the only difference).
final class ReshardingCLITests: XCTestCase {
    /// Trains 20 steps on `saveRanks` ranks with a checkpoint at step 10, resumes that checkpoint
    /// on `loadRanks` ranks with `loadSet` overrides, and compares steps 11–20 of both.
    private func assertReshards(
        from saveRanks: Int, _ saveSet: [String], to loadRanks: Int, _ loadSet: [String], _ label: String
    ) throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        func train(_ ranks: Int, _ args: [String]) throws -> String {
            let all = ["train"] + args + ["--run-dir", dir]
            let r = ranks == 1 ? try KumoProcess.run(all) : try KumoProcess.runMPI(ranks: ranks, all)
            XCTAssertEqual(r.status, 0, "\(label), \(ranks) ranks: \(r.err)")
            return r.err
        }
        let sets = (["checkpoint.every=10"] + saveSet).flatMap { ["--set", $0] }
        _ = try train(saveRanks, TinyRun.args(micro: 2) + sets)
        let continued = try metricsLosses(dir)
        XCTAssertEqual(continued.count, TinyRun.steps, label)
        let err = try train(
            loadRanks, ["--resume", dir + "/checkpoints/step-0000010"] + loadSet.flatMap { ["--set", $0] })
        XCTAssertTrue(err.contains("resume: resharded from \(saveRanks) ranks"), "\(label): \(err)")
        let resharded = try metricsLosses(dir)
        XCTAssertEqual(resharded.count, TinyRun.steps, label)
        XCTAssertEqual(
            Array(resharded.prefix(10)), Array(continued.prefix(10)), "\(label): steps before the checkpoint")
        let error = zip(resharded.suffix(10), continued.suffix(10)).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
        print("\(label): max relative loss error over the 10 steps after the resharded resume \(error)")
        XCTAssertLessThanOrEqual(error, 1e-5, "\(label): max relative loss error \(error)")
    }

    func testTwoRankZeRO1CheckpointResumesOnOneRank() throws {
        try assertReshards(
            from: 2, ["parallel.zero_stage=1"], to: 1, ["parallel.zero_stage=0"], "dp=2 ZeRO-1 -> 1 rank")
    }

    func testOneRankCheckpointResumesOnFourRanksWithZeRO3() throws {
        try assertReshards(from: 1, [], to: 4, ["parallel.zero_stage=3"], "1 rank -> dp=4 ZeRO-3")
    }

    func testFourRankZeRO2CheckpointResumesOnTwoRanksWithZeRO1() throws {
        try assertReshards(
            from: 4, ["parallel.zero_stage=2"], to: 2, ["parallel.zero_stage=1"], "dp=4 ZeRO-2 -> dp=2 ZeRO-1")
    }

    func testHybridShardedZeRO3CheckpointResumesOnOneRank() throws {
        try assertReshards(
            from: 4, ["parallel.zero_stage=3", "parallel.shard_group_size=2"], to: 1,
            ["parallel.zero_stage=0", "parallel.shard_group_size=0"], "dp=4 hybrid ZeRO-3 groups of 2 -> 1 rank")
    }

    func testTensorTimesPipelineCheckpointResumesOnFourDataRanksWithZeRO3() throws {
        try assertReshards(
            from: 4, ["parallel.tensor=2", "parallel.pipeline=2"], to: 4,
            ["parallel.tensor=1", "parallel.pipeline=1", "parallel.zero_stage=3"], "tp=2 × pp=2 -> dp=4 ZeRO-3")
    }

    func testFourRankZeRO3CheckpointResumesAtTensorTimesPipeline() throws {
        try assertReshards(
            from: 4, ["parallel.zero_stage=3"], to: 4,
            ["parallel.tensor=2", "parallel.pipeline=2", "parallel.zero_stage=0"], "dp=4 ZeRO-3 -> tp=2 × pp=2")
    }

    /// Eight ranks write the moments as ZeRO-1 shards of each stage's tensor slice; four tensor
    /// ranks then read them with the two key/value heads replicated on pairs of ranks.
    func testThreeDimensionalZeRO1CheckpointResumesOnFourTensorRanks() throws {
        try assertReshards(
            from: 8, ["parallel.tensor=2", "parallel.pipeline=2", "parallel.zero_stage=1"], to: 4,
            ["parallel.tensor=4", "parallel.pipeline=1", "parallel.zero_stage=0"], "dp=2 × tp=2 × pp=2 ZeRO-1 -> tp=4")
    }
}
