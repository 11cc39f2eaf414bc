import Foundation
import XCTest

/// Expert parallelism (`parallel.expert`) under mpirun: a mixture's experts split over 2 and 4
/// ranks train as one rank does, checkpoints reshard across expert layouts, and the layouts that
/// cannot work are refused by name.
final class ExpertParallelCLITests: XCTestCase {
    private static let steps = 6

    /// tiny-moe (8 experts, top-2) with 2 blocks; each pass is one sequence, so that every layout
    /// runs the same passes (the load-balancing loss is computed per pass).
    private func moe(_ sets: [String] = [], steps: Int = steps) -> [String] {
        ([
            "model.preset=tiny-moe", "model.num_hidden_layers=2", "model.router_z_loss_coef=0.001",
            "data.synthetic=true", "train.seq_length=32", "train.threads=1", "train.steps=\(steps)",
            "train.micro_batch_size=1", "train.global_batch_size=4",
        ] + sets).flatMap { ["--set", $0] }
    }

    func testExpertParallelOverTwoAndFourRanksMatchesOneRank() throws {
        let one = try trainRun(ranks: 1, moe())
        let two = try trainRun(ranks: 2, moe(["parallel.expert=2"]))
        assertEquivalent(two, one, "2 ranks, experts over 2")
        let calls = try XCTUnwrap(two.metrics.last?["comm.ep.alltoall.calls"] as? Double, "\(two.metrics.last ?? [:])")
        // Per block and pass: the loads and rows out and the results back forward, two exchanges backward.
        XCTAssertEqual(calls, Double(Self.steps * 2 * 2 * 5))
        assertEquivalent(try trainRun(ranks: 4, moe(["parallel.expert=4"])), one, "4 ranks, experts over 4")
        assertEquivalent(
            try trainRun(ranks: 4, moe(["parallel.expert=2", "parallel.zero_stage=1"])), one,
            "4 ranks, experts over 2 × data 2, ZeRO-1")
        let dense = try trainRun(ranks: 1, moe(["model.num_local_experts=0"]))
        XCTAssertGreaterThan(abs(dense.losses.last! - one.losses.last!), 1e-4, "the mixture trains another model")
    }

    /// A checkpoint written with experts over 2 ranks (ZeRO-1 over the ranks holding the same
    /// experts) resumes on one rank and with experts over 4, continuing as the run that wrote it.
    func testExpertParallelCheckpointReshardsAcrossExpertLayouts() throws {
        for (ranks, sets) in [(1, ["parallel.expert=1", "parallel.zero_stage=0"]), (4, ["parallel.expert=4"])] {
            let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
            let save = ["train"] + moe(["parallel.expert=2", "parallel.zero_stage=1", "checkpoint.every=3"])
            let r = try KumoProcess.runMPI(ranks: 4, save + ["--run-dir", dir])
            XCTAssertEqual(r.status, 0, r.err)
            let continued = try metricsLosses(dir)
            let resume = ["train", "--resume", dir + "/checkpoints/step-0000003"] + sets.flatMap { ["--set", $0] }
            let again = ranks == 1 ? try KumoProcess.run(resume) : try KumoProcess.runMPI(ranks: ranks, resume)
            XCTAssertEqual(again.status, 0, again.err)
            XCTAssertTrue(again.err.contains("experts over 2) to"), again.err)
            let resumed = try metricsLosses(dir)
            let error = zip(resumed.suffix(3), continued.suffix(3)).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
            XCTAssertEqual(resumed.count, Self.steps)
            XCTAssertLessThanOrEqual(
                error, 1e-5, "resumed on \(ranks) ranks with \(sets): max relative loss error \(error)")
        }
    }

    func testLayoutsExpertParallelismCannotRunAreRefusedByName() throws {
        let cases: [(ranks: Int, sets: [String], expect: String)] = [
            (2, ["parallel.expert=2", "model.num_local_experts=0"], "parallel.expert = 2 needs a mixture of experts"),
            (2, ["parallel.expert=3"], "parallel.expert = 3 must divide model.num_local_experts = 8"),
            (2, ["parallel.expert=2", "parallel.zero_stage=2"], "works with parallel.zero_stage = 0 or 1"),
            (2, ["parallel.expert=4"], "parallel.expert = 4 must divide the data-parallel size 2"),
            (
                2, ["parallel.pipeline=2", "train.global_batch_size=2"],
                "a mixture of experts with parallel.pipeline = 2"
            ),
        ]
        for c in cases {
            let dir = try KumoProcess.temporaryDirectory(for: self)
            let r = try KumoProcess.runMPI(
                ranks: c.ranks, ["train"] + moe(c.sets, steps: 1) + ["--run-dir", dir + "/run"])
            XCTAssertNotEqual(r.status, 0, "\(c.sets)")
            XCTAssertTrue(r.err.contains(c.expect), "\(c.sets): \(r.err.suffix(600))")
        }
    }
}
