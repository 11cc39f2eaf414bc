import Foundation
import XCTest

/// Tensor × pipeline (× data) parallelism under mpirun (oversubscribed): the 3D mesh trains the
/// tiny preset to the one-rank losses and parameters on the same global batch, also with sequence
/// parallelism, GPipe and full or stage recompute.
final class ThreeDParallelCLITests: XCTestCase {
    private func tiny(_ extra: [String]) -> [String] {
        TinyRun.args(micro: 2, global: 8, steps: 10) + extra.flatMap { ["--set", $0] }
    }

    func testTensorTimesPipelineMatchesOneRankAlsoWithSequenceParallelAndRecompute() throws {
        let one = try trainRun(ranks: 1, tiny([]))
        let tpPp = ["parallel.tensor=2", "parallel.pipeline=2"]
        let run = try trainRun(ranks: 4, tiny(tpPp))
        XCTAssertTrue(run.err.contains("data-parallel 1, tensor 2, pipeline 2"), run.err)
        assertEquivalent(run, one, "tp=2 × pp=2")
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertGreaterThan(last["comm.tp.allreduce.bytes"] as? Double ?? 0, 0, "\(last.keys.sorted())")
        XCTAssertGreaterThan(last["comm.pp.send.bytes"] as? Double ?? 0, 0, "\(last.keys.sorted())")
        let variants = ["parallel.sequence=true", "parallel.schedule=gpipe", "train.recompute=full"]
        let sequence = try trainRun(ranks: 4, tiny(tpPp + variants))
        assertEquivalent(sequence, one, "tp=2 × pp=2, sequence parallel, GPipe, recompute")
        // Stage recompute re-runs the first stage's forward, its tensor-parallel collectives included,
        // before each backward under 1F1B.
        let stage = try trainRun(ranks: 4, tiny(tpPp + ["parallel.sequence=true", "train.recompute=stage"]))
        assertEquivalent(stage, one, "tp=2 × pp=2, sequence parallel, 1F1B, stage recompute")
    }

    func testDataTimesTensorTimesPipelineWithZeRO1MatchesOneRank() throws {
        let one = try trainRun(ranks: 1, tiny([]))
        let run = try trainRun(
            ranks: 8, tiny(["parallel.tensor=2", "parallel.pipeline=2", "parallel.zero_stage=1"]))
        XCTAssertTrue(run.err.contains("data-parallel 2, tensor 2, pipeline 2"), run.err)
        assertEquivalent(run, one, "dp=2 × tp=2 × pp=2, ZeRO-1")
        XCTAssertGreaterThan(run.metrics.last?["comm.dp.allgather.bytes"] as? Double ?? 0, 0)
    }

    /// Every rank writes its stage's tensor slice (replicated norms once); resumed with the same
    /// layout, steps 11–20 are those of the uninterrupted run bit for bit.
    func testTensorTimesPipelineCheckpointResumesExactly() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let layout = ["parallel.tensor=2", "parallel.pipeline=2"].flatMap { ["--set", $0] }
        let first = try KumoProcess.runMPI(
            ranks: 4,
            ["train"] + TinyRun.args(micro: 2) + layout + ["--set", "checkpoint.every=10", "--run-dir", dir])
        XCTAssertEqual(first.status, 0, first.err)
        let manifest = try String(contentsOfFile: dir + "/checkpoints/step-0000010/manifest.json", encoding: .utf8)
        for rank in 0..<4 { XCTAssertTrue(manifest.contains("rank-0000\(rank).bin"), manifest) }
        let uninterrupted = try metricsLosses(dir)
        let resumed = try KumoProcess.runMPI(
            ranks: 4, ["train", "--resume", dir + "/checkpoints/step-0000010", "--run-dir", dir])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertFalse(resumed.err.contains("resharded"), resumed.err)
        XCTAssertEqual(try metricsLosses(dir), uninterrupted)
        XCTAssertEqual(uninterrupted.count, TinyRun.steps)
    }
}
