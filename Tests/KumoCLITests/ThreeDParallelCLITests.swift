import Foundation
import XCTest

/// Tensor × pipeline (× data) parallelism under mpirun (oversubscribed): the 3D mesh trains the
/// tiny preset to the one-rank losses and parameters on the same global batch.
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
    }

    func testDataTimesTensorTimesPipelineWithZeRO1MatchesOneRank() throws {
        let one = try trainRun(ranks: 1, tiny([]))
        let run = try trainRun(
            ranks: 8, tiny(["parallel.tensor=2", "parallel.pipeline=2", "parallel.zero_stage=1"]))
        XCTAssertTrue(run.err.contains("data-parallel 2, tensor 2, pipeline 2"), run.err)
        assertEquivalent(run, one, "dp=2 × tp=2 × pp=2, ZeRO-1")
        XCTAssertGreaterThan(run.metrics.last?["comm.dp.allgather.bytes"] as? Double ?? 0, 0)
    }
}
