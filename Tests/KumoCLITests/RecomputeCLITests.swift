import Foundation
import XCTest

/// `train.recompute = "full"` and `"stage"` through `kumo train`: the same losses and final parameters
/// bit for bit as keeping the activations, on one rank, under ZeRO-3 and on pipeline stages, with
/// fewer activation bytes.
final class RecomputeCLITests: XCTestCase {
    private let full = ["--set", "train.recompute=full"]

    /// The activation bytes the start-up line of train.log states (the formula's).
    private func loggedActivationBytes(_ run: TrainedRun) throws -> Double {
        let line = try XCTUnwrap(run.err.split(separator: "\n").first { $0.hasPrefix("memory: about") }, run.err)
        // "... activations 0.01 GiB = 12345678 bytes) ..."
        let after = try XCTUnwrap(line.components(separatedBy: " GiB = ").last, String(line))
        return try XCTUnwrap(Double(after.prefix { $0.isNumber }), String(line))
    }

    private func assertBitIdentical(_ run: TrainedRun, _ reference: TrainedRun, _ label: String) {
        XCTAssertEqual(run.losses.count, 10, label)
        XCTAssertEqual(run.losses, reference.losses, "\(label): losses")
        XCTAssertEqual(run.params.count, reference.params.count, label)
        let differing = zip(run.params, reference.params).filter { $0 != $1 }.count
        XCTAssertEqual(differing, 0, "\(label): \(differing) final parameters differ")
    }

    func testRecomputeGivesBitIdenticalLossesAndParametersWithFewerActivationBytes() throws {
        let args = TinyRun.args(micro: 2, global: 4, steps: 10)
        let kept = try trainRun(ranks: 1, args)
        let recomputed = try trainRun(ranks: 1, args + full)
        assertBitIdentical(recomputed, kept, "1 rank")
        var bytes: [Double] = []
        for (run, mode) in [(kept, "none"), (recomputed, "full")] {
            let last = try XCTUnwrap(run.metrics.last)
            let allocated = try XCTUnwrap(last["memory.activations_bytes"] as? Double, mode)
            XCTAssertEqual(allocated, try loggedActivationBytes(run), "recompute \(mode): allocated vs formula")
            XCTAssertTrue(run.err.contains("activation recompute \(mode)"), run.err)
            let rss = try XCTUnwrap(last["memory.peak_rss_bytes"] as? Double, mode)
            XCTAssertGreaterThan(rss, allocated, "recompute \(mode): peak RSS below the activations it holds")
            print("recompute \(mode): activation bytes \(Int(allocated)), peak RSS \(Int(rss))")
            bytes.append(allocated)
        }
        XCTAssertLessThan(bytes[1], bytes[0])
    }

    func testRecomputeUnderZeRO3OnTwoRanksGivesBitIdenticalLossesAndParameters() throws {
        let args = TinyRun.args(micro: 2, global: 8, steps: 10) + ["--set", "parallel.zero_stage=3"]
        let kept = try trainRun(ranks: 2, args)
        for mode in ["full", "stage"] {
            let recomputed = try trainRun(ranks: 2, args + ["--set", "train.recompute=\(mode)"])
            assertBitIdentical(recomputed, kept, "ZeRO-3, 2 ranks, recompute \(mode)")
        }
    }

    /// `stage` on two pipeline stages: under 1F1B the first stage re-runs its forward before every
    /// backward (the other micro-batch was the last forward), under GPipe both stages do; the same
    /// losses and parameters as keeping the activations, from fewer activation bytes on the first stage.
    func testStageRecomputeOnTwoPipelineStagesMatchesKeepingTheActivations() throws {
        let args = TinyRun.args(micro: 2, global: 8, steps: 10) + ["--set", "parallel.pipeline=2"]
        let stage = ["--set", "train.recompute=stage"]
        let kept = try trainRun(ranks: 2, args)
        let oneF = try trainRun(ranks: 2, args + stage)
        assertBitIdentical(oneF, kept, "2 stages, 1F1B, recompute stage")
        let gpipe = try trainRun(ranks: 2, args + stage + ["--set", "parallel.schedule=gpipe"])
        assertEquivalent(gpipe, kept, "2 stages, GPipe, recompute stage")
        let bytes = try [kept, oneF].map { try XCTUnwrap($0.metrics.last?["memory.activations_bytes"] as? Double) }
        print("first of 2 stages, 2 micro-batches in flight: activation bytes none \(bytes[0]), stage \(bytes[1])")
        XCTAssertLessThan(bytes[1], bytes[0])
    }

    /// Sequences of 1024 in micro-batches of 4: the tiny model's blocks hold about 127 MB of
    /// activations each, so dropping three of the four shows in the peak RSS beside the rest of
    /// the process (weights, logits, the sgemm peak measurement: under 200 MB).
    func testRecomputeLowersPeakRSSOnLongSequences() throws {
        let args = [
            "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=1024",
            "--set", "train.threads=1", "--set", "train.steps=1", "--set", "train.micro_batch_size=4",
            "--set", "train.global_batch_size=4",
        ]
        let kept = try XCTUnwrap(try trainRun(ranks: 1, args).metrics.last)
        let recomputed = try XCTUnwrap(try trainRun(ranks: 1, args + full).metrics.last)
        let saved =
            try XCTUnwrap(kept["memory.activations_bytes"] as? Double)
            - XCTUnwrap(recomputed["memory.activations_bytes"] as? Double)
        let rssSaved =
            try XCTUnwrap(kept["memory.peak_rss_bytes"] as? Double)
            - XCTUnwrap(recomputed["memory.peak_rss_bytes"] as? Double)
        print("seq 1024 × 4: activation bytes saved \(Int(saved)), peak RSS saved \(Int(rssSaved))")
        // Three of the four blocks' activations: 4,096 rows × 3,654 floats each (no T×T attention buffer).
        XCTAssertGreaterThan(saved, 170_000_000)
        XCTAssertGreaterThan(rssSaved, saved / 2, "peak RSS fell by \(Int(rssSaved)) of \(Int(saved)) bytes")
    }
}
