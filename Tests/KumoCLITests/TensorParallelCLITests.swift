import Foundation
import XCTest

/// `kumo train` with `parallel.tensor` > 1 under mpirun: equivalence with one rank (ten steps of
/// the tiny preset), the tensor group's counters, and the refused settings.
final class TensorParallelCLITests: XCTestCase {
    private let steps = 10
    private func tiny(micro: Int = 2, global: Int = 4) -> [String] {
        TinyRun.args(micro: micro, global: global, steps: steps)
    }

    func testTwoTensorRanksMatchTheSingleRankLossAndParameters() throws {
        let one = try trainRun(ranks: 1, tiny())
        let run = try trainRun(ranks: 2, tiny() + ["--set", "parallel.tensor=2"])
        XCTAssertTrue(run.err.contains("data-parallel 1, tensor 2"), run.err)
        assertEquivalent(run, one, "tp=2")
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertGreaterThan(last["comm.tp.allreduce.bytes"] as? Double ?? 0, 0, "\(last.keys.sorted())")
        // Two key/value heads over two ranks are split, not replicated: no replica group.
        XCTAssertNil(last["comm.tp_kv.allreduce.calls"])
    }

    func testFourTensorRanksReplicatingKeyValueHeadsMatchTheSingleRank() throws {
        // The tiny preset has 2 key/value heads: over 4 tensor ranks each is held by 2 of them.
        let one = try trainRun(ranks: 1, tiny())
        let run = try trainRun(ranks: 4, tiny() + ["--set", "parallel.tensor=4"])
        assertEquivalent(run, one, "tp=4")
        XCTAssertGreaterThan(run.metrics.last?["comm.tp_kv.allreduce.bytes"] as? Double ?? 0, 0)
    }

    func testDataTimesTensorParallelMatchesTheSingleRankAlsoWithZeRO1() throws {
        let one = try trainRun(ranks: 1, tiny())
        let dpTp = ["--set", "parallel.tensor=2"]
        assertEquivalent(try trainRun(ranks: 4, tiny(micro: 1) + dpTp), one, "dp=2 × tp=2")
        let zero = try trainRun(ranks: 4, tiny(micro: 1) + dpTp + ["--set", "parallel.zero_stage=1"])
        assertEquivalent(zero, one, "dp=2 × tp=2, ZeRO-1")
        XCTAssertGreaterThan(zero.metrics.last?["comm.dp.allgather.bytes"] as? Double ?? 0, 0)
    }

    func testParallelLayersWithTiedEmbeddingsOnTwoTensorRanksMatchTheSingleRank() throws {
        let model = ["--set", "model.parallel_layers=true", "--set", "model.tie_word_embeddings=true"]
        let one = try trainRun(ranks: 1, tiny() + model)
        assertEquivalent(
            try trainRun(ranks: 2, tiny() + model + ["--set", "parallel.tensor=2"]), one, "parallel, tp=2")
    }

    func testSequenceParallelOnTwoTensorRanksMatchesTheSingleRank() throws {
        let one = try trainRun(ranks: 1, tiny())
        let run = try trainRun(ranks: 2, tiny() + ["--set", "parallel.tensor=2", "--set", "parallel.sequence=true"])
        assertEquivalent(run, one, "tp=2, sequence parallel")
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertGreaterThan(last["comm.tp.allgather.bytes"] as? Double ?? 0, 0, "\(last.keys.sorted())")
        XCTAssertGreaterThan(last["comm.tp.reducescatter.bytes"] as? Double ?? 0, 0, "\(last.keys.sorted())")
    }

    /// Runs one `kumo train` process that must be refused; returns its standard error.
    private func refusal(_ settings: [String]) throws -> String {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let r = try KumoProcess.run(["train"] + tiny() + settings.flatMap { ["--set", $0] } + ["--run-dir", dir])
        XCTAssertNotEqual(r.status, 0, r.err)
        return r.err
    }

    func testSettingsThatCannotWorkAreRefusedNamingTheKeyAndWhatWorks() throws {
        let heads = try refusal(["parallel.tensor=3"])
        XCTAssertTrue(heads.contains("model.num_attention_heads: 4 is not divisible by parallel.tensor = 3"), heads)
        let kv = try refusal([
            "parallel.tensor=4", "model.hidden_size=384", "model.num_attention_heads=12", "model.num_key_value_heads=6",
        ])
        XCTAssertTrue(
            kv.contains("model.num_key_value_heads: 6 key/value heads can be neither split nor replicated"), kv)
        let zero = try refusal(["parallel.tensor=2", "parallel.zero_stage=2"])
        XCTAssertTrue(zero.contains("parallel.zero_stage = 2 with parallel.tensor = 2 is not supported"), zero)
        XCTAssertTrue(zero.contains("ZeRO-1 across the data-parallel ranks"), zero)
        let sequence = try refusal(["parallel.sequence=true"])
        XCTAssertTrue(sequence.contains("parallel.sequence = true needs parallel.tensor > 1"), sequence)
        let rows = try refusal([
            "parallel.tensor=2", "parallel.sequence=true", "train.seq_length=33", "train.micro_batch_size=1",
        ])
        XCTAssertTrue(rows.contains("33 rows must be divisible by parallel.tensor = 2"), rows)
    }
}
