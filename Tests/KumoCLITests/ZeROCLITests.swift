import Foundation
import XCTest

/// ZeRO stages 2 and 3 under mpirun (oversubscribed): equivalence with one rank on the same
/// global batch, per-rank memory after the ZeRO formulas, and the bytes each collective moves.
/// The tolerances are `assertEquivalent`'s, the ones plain data parallelism and ZeRO-1 meet:
/// reduce-scatter sums the same gradients as one rank in another order, and AdamW turns those
/// last-bit differences of near-zero gradients into element moves of a fraction of the learning
/// rate (up to ~5e-5 over 20 steps), so elements are held to 1e-4 and the whole buffer to 1e-5
/// relative in the L2 norm.
final class ZeROCLITests: XCTestCase {
    private let steps = TinyRun.steps

    func testZeRO2MatchesSingleRankAndShardsGradientsAndOptimizerState() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 2))
        let p = one.params.count
        for ranks in [2, 4] {
            let run = try trainRun(ranks: ranks, TinyRun.args(micro: 2) + ["--set", "parallel.zero_stage=2"])
            assertEquivalent(run, one, "ZeRO-2, \(ranks) ranks")
            // Stage 2 per rank: 4P parameters + 4P/N gradients + 8P/N optimizer state (rank 0 holds ⌈P/N⌉).
            let shard = (p + ranks - 1) / ranks
            let last = try XCTUnwrap(run.metrics.last)
            XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * p))
            XCTAssertEqual(last["memory.grads_bytes"] as? Double, Double(4 * shard), "\(ranks) ranks")
            XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard), "\(ranks) ranks")
            // Every gradient is reduce-scattered once per step and none is all-reduced: the only
            // all-reduces are the token count, the loss and the squared gradient norm (8 bytes each).
            XCTAssertEqual(last["comm.dp.reducescatter.bytes"] as? Double, Double(steps * 4 * p))
            XCTAssertEqual(last["comm.dp.allreduce.bytes"] as? Double, Double(steps * 24))
            XCTAssertEqual(last["comm.dp.allgather.bytes"] as? Double, Double(steps * 4 * shard))
        }
    }
}

extension ZeROCLITests {
    /// Floats in the largest stage ZeRO-3 gathers in the tiny preset: the head (final norm and
    /// output projection, vocabulary 4096 × hidden 256).
    private var largestStage: Int { 4096 * 256 + 256 }

    func testZeRO3MatchesSingleRankAndKeepsOnlyItsShardPlusTheGatheredStages() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 2))
        let p = one.params.count
        for ranks in [2, 4] {
            let run = try trainRun(ranks: ranks, TinyRun.args(micro: 2) + ["--set", "parallel.zero_stage=3"])
            assertEquivalent(run, one, "ZeRO-3, \(ranks) ranks")
            // Stage 3 per rank: 16P/N (parameters, gradients, both moments of the shard) plus the
            // gathered stages: the one in use and the one prefetched, at most two of the largest.
            let shard = (p + ranks - 1) / ranks
            let last = try XCTUnwrap(run.metrics.last)
            XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * shard), "\(ranks) ranks")
            XCTAssertEqual(last["memory.grads_bytes"] as? Double, Double(4 * shard), "\(ranks) ranks")
            XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard), "\(ranks) ranks")
            let gathered = try XCTUnwrap(last["memory.gathered_params_bytes"] as? Double)
            XCTAssertGreaterThan(gathered, 0)
            XCTAssertLessThanOrEqual(gathered, Double(2 * 4 * largestStage))
            print("ZeRO-3, \(ranks) ranks: \(Int(gathered)) bytes of gathered stages at most, shard \(4 * shard) bytes")
            XCTAssertEqual(last["comm.dp.reducescatter.bytes"] as? Double, Double(steps * 4 * p))
        }
    }

    func testHybridShardingInGroupsOfTwoOnFourRanksMatchesSingleRank() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 2))
        let p = one.params.count
        let run = try trainRun(
            ranks: 4,
            TinyRun.args(micro: 2) + ["--set", "parallel.zero_stage=3", "--set", "parallel.shard_group_size=2"])
        assertEquivalent(run, one, "hybrid ZeRO-3, 4 ranks in shard groups of 2")
        // Sharded over the 2 ranks of a group, not over all 4; the shard's gradients are all-reduced
        // over the 2 replica groups once per step, and parameters are gathered only inside the group.
        let shard = (p + 1) / 2
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * shard))
        XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard))
        XCTAssertEqual(last["comm.replica.allreduce.bytes"] as? Double, Double(steps * 4 * shard))
        XCTAssertEqual(last["comm.shard.reducescatter.bytes"] as? Double, Double(steps * 4 * p))
        XCTAssertGreaterThan(last["comm.shard.allgather.bytes"] as? Double ?? 0, 0)
        XCTAssertNil(last["comm.dp.allgather.bytes"], "parameters must not be gathered across shard groups")
    }

    func testQuantizedGathersSendAQuarterOrHalfTheBytesAndKeepTheLossWithinOnePercent() throws {
        // 200 short steps on 2 ranks: sequences of 16, one sequence per rank.
        let args =
            TinyRun.args(micro: 1, global: 2, steps: 200) + [
                "--set", "train.seq_length=16", "--set", "parallel.zero_stage=3",
            ]
        let fp32 = try trainRun(ranks: 2, args)
        let fp32Bytes = try XCTUnwrap(fp32.metrics.last?["comm.dp.allgather.bytes"] as? Double)
        for (codec, limit) in [("int8", 0.27), ("bf16", 0.5)] {
            let run = try trainRun(ranks: 2, args + ["--set", "parallel.quantized_allgather=\(codec)"])
            let bytes = try XCTUnwrap(run.metrics.last?["comm.dp.allgather.bytes"] as? Double)
            XCTAssertLessThanOrEqual(bytes / fp32Bytes, limit, "\(codec): all-gather bytes / fp32's")
            let drift = abs(run.losses[199] - fp32.losses[199]) / fp32.losses[199]
            XCTAssertLessThanOrEqual(drift, 0.01, "\(codec): loss after 200 steps off by \(drift) relative")
            // The gathered parameters really were quantized: the trajectories are not identical.
            XCTAssertNotEqual(run.params, fp32.params, codec)
            print("\(codec): all-gather bytes \(bytes / fp32Bytes) of fp32, loss after 200 steps off by \(drift)")
        }
    }
}
