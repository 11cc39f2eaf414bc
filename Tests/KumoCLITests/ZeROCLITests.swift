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
    /// Gradient buckets of 1 MiB: the tiny model (20 MB of parameters) in about 20 of them.
    private let buckets = ["--set", "parallel.bucket_mib=1"]
    private let bucketFloats = 262_144

    /// Checks the gradient memory a sharded run allocated: its shard plus the scratch backward
    /// writes into (the largest stage: the head) and two staged buckets (each under two bucket
    /// targets), far below the whole 4P-byte buffer. Returns the scratch bytes.
    @discardableResult
    private func assertShardedGradients(_ m: [String: Any], p: Int, shard: Int, _ label: String) throws -> Double {
        let grads = try XCTUnwrap(m["memory.grads_bytes"] as? Double, label)
        let scratch = try XCTUnwrap(m["memory.grad_scratch_bytes"] as? Double, label)
        XCTAssertEqual(grads, Double(4 * shard) + scratch, label)
        XCTAssertLessThanOrEqual(scratch, Double(4 * (largestStage + 2 * 2 * bucketFloats)), label)
        XCTAssertLessThan(grads, Double(4 * p), "\(label): the whole gradient buffer was allocated")
        print("\(label): gradient bytes \(Int(grads)) (shard \(4 * shard), scratch \(Int(scratch))), whole \(4 * p)")
        return scratch
    }

    func testZeRO2MatchesSingleRankAndShardsGradientsAndOptimizerState() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 2))
        let p = one.params.count
        for ranks in [2, 4] {
            let run = try trainRun(
                ranks: ranks, TinyRun.args(micro: 2) + buckets + ["--set", "parallel.zero_stage=2"])
            assertEquivalent(run, one, "ZeRO-2, \(ranks) ranks")
            // Stage 2 per rank: 4P parameters + 4P/N gradients + 8P/N optimizer state (rank 0 holds
            // ⌈P/N⌉), plus backward's scratch and the buckets in flight.
            let shard = (p + ranks - 1) / ranks
            let last = try XCTUnwrap(run.metrics.last)
            XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * p))
            try assertShardedGradients(last, p: p, shard: shard, "ZeRO-2, \(ranks) ranks")
            XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard), "\(ranks) ranks")
            // Every gradient is reduce-scattered once per micro-batch (8 / (2 × ranks) of them per
            // step) and none is all-reduced: the only all-reduces are the token count, the loss and
            // the squared gradient norm (8 bytes each).
            let microBatches = 8 / (2 * ranks)
            XCTAssertEqual(last["comm.dp.reducescatter.bytes"] as? Double, Double(steps * microBatches * 4 * p))
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
            let run = try trainRun(
                ranks: ranks, TinyRun.args(micro: 2) + buckets + ["--set", "parallel.zero_stage=3"])
            assertEquivalent(run, one, "ZeRO-3, \(ranks) ranks")
            // Stage 3 per rank: 16P/N (parameters, gradients, both moments of the shard) plus the
            // gathered stages (the one in use and the one prefetched, at most two of the largest)
            // and the gradient scratch.
            let shard = (p + ranks - 1) / ranks
            let last = try XCTUnwrap(run.metrics.last)
            XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * shard), "\(ranks) ranks")
            try assertShardedGradients(last, p: p, shard: shard, "ZeRO-3, \(ranks) ranks")
            XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard), "\(ranks) ranks")
            let gathered = try XCTUnwrap(last["memory.gathered_params_bytes"] as? Double)
            XCTAssertGreaterThan(gathered, 0)
            XCTAssertLessThanOrEqual(gathered, Double(2 * 4 * largestStage))
            print("ZeRO-3, \(ranks) ranks: \(Int(gathered)) bytes of gathered stages at most, shard \(4 * shard) bytes")
            XCTAssertEqual(last["comm.dp.reducescatter.bytes"] as? Double, Double(steps * 8 / (2 * ranks) * 4 * p))
        }
    }

    func testHybridShardingInGroupsOfTwoOnFourRanksMatchesSingleRank() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 2))
        let p = one.params.count
        let run = try trainRun(
            ranks: 4,
            TinyRun.args(micro: 2) + buckets + [
                "--set", "parallel.zero_stage=3", "--set", "parallel.shard_group_size=2",
            ])
        assertEquivalent(run, one, "hybrid ZeRO-3, 4 ranks in shard groups of 2")
        // Sharded over the 2 ranks of a group, not over all 4; the shard's gradients are all-reduced
        // over the 2 replica groups once per step, and parameters are gathered only inside the group.
        let shard = (p + 1) / 2
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * shard))
        try assertShardedGradients(last, p: p, shard: shard, "hybrid ZeRO-3")
        XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard))
        XCTAssertEqual(last["comm.replica.allreduce.bytes"] as? Double, Double(steps * 4 * shard))
        XCTAssertEqual(last["comm.shard.reducescatter.bytes"] as? Double, Double(steps * 4 * p))
        XCTAssertGreaterThan(last["comm.shard.allgather.bytes"] as? Double ?? 0, 0)
        XCTAssertNil(last["comm.dp.allgather.bytes"], "parameters must not be gathered across shard groups")
    }

    func testQuantizedGathersSendAQuarterOrHalfTheBytesAndKeepTheLossWithinOnePercent() throws {
        // 200 short steps on 2 ranks (sequences of 16, one per rank) of English text read as bytes:
        // the loss falls from ln 4096 ≈ 8.3 to below 3, so a quantization that hurt learning shows.
        let text = KumoProcess.sharedData.appendingPathComponent("corpus/en/gutenberg_en.sample.jsonl").path
        let args =
            TinyRun.args(micro: 1, global: 2, steps: 200) + [
                "--set", "data.synthetic=false", "--set", "data.path=\(text)", "--set", "data.tokenizer=byte",
                "--set", "train.seq_length=16", "--set", "parallel.zero_stage=3",
            ]
        let fp32 = try trainRun(ranks: 2, args)
        let fp32Bytes = try XCTUnwrap(fp32.metrics.last?["comm.dp.allgather.bytes"] as? Double)
        let first = fp32.losses[0]
        XCTAssertLessThan(fp32.losses[199], 0.5 * first, "fp32: the loss did not fall: \(first) → \(fp32.losses[199])")
        print("fp32: loss \(first) at step 1, \(fp32.losses[199]) after 200 steps")
        for (codec, limit) in [("int8", 0.27), ("bf16", 0.5)] {
            let run = try trainRun(ranks: 2, args + ["--set", "parallel.quantized_allgather=\(codec)"])
            let bytes = try XCTUnwrap(run.metrics.last?["comm.dp.allgather.bytes"] as? Double)
            XCTAssertLessThanOrEqual(bytes / fp32Bytes, limit, "\(codec): all-gather bytes / fp32's")
            let drift = abs(run.losses[199] - fp32.losses[199]) / fp32.losses[199]
            XCTAssertLessThanOrEqual(drift, 0.01, "\(codec): loss after 200 steps off by \(drift) relative")
            // The gathered parameters really were quantized: the trajectories are not identical.
            XCTAssertNotEqual(run.params, fp32.params, codec)
            print(
                "\(codec): all-gather bytes \(bytes / fp32Bytes) of fp32; loss \(run.losses[0]) at step 1, "
                    + "\(run.losses[199]) after 200 steps (fp32 \(fp32.losses[199])), off by \(drift) relative")
        }
    }
}
