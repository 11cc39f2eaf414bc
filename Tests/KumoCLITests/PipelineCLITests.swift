import Foundation
import XCTest

/// Pipeline parallelism under mpirun (oversubscribed): GPipe and 1F1B on 2 and 4 stages, and
/// data × pipeline with and without ZeRO-1, equal the one-rank run on the same global batch;
/// the bubble and the point-to-point traffic are logged.
final class PipelineCLITests: XCTestCase {
    private let steps = 10
    /// The tiny preset (4 blocks, hidden 256) on micro-batches of 2 × 32 tokens.
    private func tiny(micro: Int = 2, _ extra: [String] = []) -> [String] {
        TinyRun.args(micro: micro, global: 8, steps: steps) + extra
    }

    func testGPipeAndOneForwardOneBackwardOnTwoAndFourStagesMatchOneRank() throws {
        let one = try trainRun(ranks: 1, tiny())
        for stages in [2, 4] {
            for schedule in ["gpipe", "1f1b"] {
                let label = "\(stages) stages, \(schedule)"
                let run = try trainRun(
                    ranks: stages,
                    tiny(["--set", "parallel.pipeline=\(stages)", "--set", "parallel.schedule=\(schedule)"]))
                assertEquivalent(run, one, label)
                XCTAssertTrue(run.err.contains("(schedule \(schedule))"), run.err)
                // Rank 0 is the first stage: per step it sends the 4 micro-batches' hidden states
                // (2 × 32 rows of 256 floats) and receives as many gradients.
                let perStep = Double(4 * 2 * 32 * 256 * 4)
                for (i, m) in run.metrics.enumerated() {
                    XCTAssertEqual(
                        m["comm.pp.send.bytes"] as? Double, Double(i + 1) * perStep, "\(label) step \(i + 1)")
                    XCTAssertEqual(
                        m["comm.pp.recv.bytes"] as? Double, Double(i + 1) * perStep, "\(label) step \(i + 1)")
                    let bubble = try XCTUnwrap(m["pipeline.bubble_seconds"] as? Double, label)
                    let fraction = try XCTUnwrap(m["pipeline.bubble_fraction"] as? Double, label)
                    XCTAssertGreaterThan(bubble, 0, label)
                    XCTAssertTrue((0..<1).contains(fraction), "\(label): bubble fraction \(fraction)")
                }
            }
        }
        XCTAssertNil(one.metrics[0]["pipeline.bubble_seconds"], "one rank has no pipeline")
    }

    func testTwoDataParallelPipelinesMatchOneRankWithAndWithoutZeRO1() throws {
        let one = try trainRun(ranks: 1, tiny())
        let p = one.params.count
        for zero in [0, 1] {
            let run = try trainRun(
                ranks: 4, tiny(["--set", "parallel.pipeline=2", "--set", "parallel.zero_stage=\(zero)"]))
            assertEquivalent(run, one, "data 2 × pipeline 2, ZeRO-\(zero)")
            XCTAssertTrue(run.err.contains("data-parallel 2, tensor 1, pipeline 2"), run.err)
            // Rank 0 holds the first stage (embedding and two blocks), under ZeRO-1 half its optimizer state.
            let last = try XCTUnwrap(run.metrics.last)
            let stage = try XCTUnwrap(last["memory.params_bytes"] as? Double) / 4
            XCTAssertLessThan(stage, Double(p))
            XCTAssertEqual(
                last["memory.optimizer_bytes"] as? Double, zero == 0 ? 8 * stage : 8 * (stage / 2).rounded(.up))
            XCTAssertNotNil(last["comm.dp.allreduce.bytes"], "gradients are all-reduced over the data-parallel pair")
        }
    }

    /// `data.reset_attention` on a corpus of short documents: every stage reads each micro-batch's
    /// positions, so two stages equal one rank; the reset changes the losses.
    func testResetAttentionOnTwoStagesMatchesOneRank() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let lines = (0..<60).map { "{\"text\": \"doc \($0) \(String(repeating: "xy", count: $0 % 9))\"}\n" }
        try lines.joined().write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        let corpus = ["--set", "data.synthetic=false", "--set", "data.path=\"\(dir)\""]
        let reset = TinyRun.args(micro: 2, global: 8, steps: 4) + corpus + ["--set", "data.reset_attention=true"]
        let one = try trainRun(ranks: 1, reset)
        let staged = try trainRun(ranks: 2, reset + ["--set", "parallel.pipeline=2"])
        assertEquivalent(staged, one, "2 stages, data.reset_attention")
        let plain = try trainRun(ranks: 1, TinyRun.args(micro: 2, global: 8, steps: 4) + corpus)
        for (x, y) in zip(one.losses, plain.losses) { XCTAssertNotEqual(x, y, "the reset changes every step's loss") }
    }
}
