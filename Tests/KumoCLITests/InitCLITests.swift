import Foundation
import XCTest

/// `kumo train` with `model.init`: from a run's weights on any layout, and from SmolLM2's GGUF
/// file to a run directory whose weights generate without a tokenizer flag.
final class InitCLITests: XCTestCase {
    func testInitFromARunsWeightsTrainsAlikeOnOneRankZeRO3AndTensorParallelRanks() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let base = try KumoProcess.run(
            ["train"] + TinyRun.args(micro: 2, global: 4, steps: 2) + ["--run-dir", dir + "/base"])
        XCTAssertEqual(base.status, 0, base.err)
        // The tiny preset's arguments without model.preset: the shape comes from the init file.
        let args =
            ["--set", "model.init=\"\(dir)/base/model.safetensors\""]
            + TinyRun.args(micro: 2, global: 4, steps: 3).dropFirst(2)
        let one = try trainRun(ranks: 1, args)
        let seeded = try trainRun(ranks: 1, TinyRun.args(micro: 2, global: 4, steps: 3))
        XCTAssertNotEqual(one.losses.first, seeded.losses.first, "the init run starts from the base run's weights")
        assertEquivalent(try trainRun(ranks: 2, args + ["--set", "parallel.zero_stage=3"]), one, "dp=2 ZeRO-3")
        assertEquivalent(try trainRun(ranks: 2, args + ["--set", "parallel.tensor=2"]), one, "tp=2")
    }

    func testAResumedInitRunRestoresItsCheckpointNotTheInitWeights() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let base = try KumoProcess.run(
            ["train"] + TinyRun.args(micro: 2, global: 4, steps: 2) + ["--run-dir", dir + "/base"])
        XCTAssertEqual(base.status, 0, base.err)
        let args =
            ["train", "--set", "model.init=\"\(dir)/base/model.safetensors\"", "--set", "optim.decay_steps=3"]
            + TinyRun.args(micro: 2, global: 4, steps: 3).dropFirst(2)
        let straight = try KumoProcess.run(args + ["--run-dir", dir + "/straight"])
        XCTAssertEqual(straight.status, 0, straight.err)
        let first = try KumoProcess.run(
            args + ["--set", "train.steps=2", "--set", "checkpoint.every=2", "--run-dir", dir + "/resumed"])
        XCTAssertEqual(first.status, 0, first.err)
        let resumed = try KumoProcess.run([
            "train", "--resume", "latest", "--set", "train.steps=3", "--run-dir", dir + "/resumed",
        ])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertEqual(try metricsLosses(dir + "/resumed"), try metricsLosses(dir + "/straight"))
    }

    func testARunFromSmolLM2GeneratesWithoutATokenizerFlag() throws {
        let gguf = ServedKumo.gguf
        XCTAssertTrue(FileManager.default.fileExists(atPath: gguf), "\(gguf): run scripts/fetch_smollm2.sh")
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let args = [
            "train", "--set", "model.init=\"\(gguf)\"", "--set", "data.synthetic=true", "--set", "train.seq_length=8",
            "--set", "train.steps=1", "--set", "train.micro_batch_size=1", "--run-dir", dir + "/run",
        ]
        let refused = try KumoProcess.run(args + ["--set", "model.hidden_size=512"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.err.contains("model.hidden_size = 512"), refused.err)
        XCTAssertTrue(refused.err.contains("model.hidden_size = 576"), refused.err)
        let train = try KumoProcess.run(args)
        XCTAssertEqual(train.status, 0, train.err)
        let generate = try KumoProcess.run([
            "generate", "--model", dir + "/run/model.safetensors", "--prompt", "x", "--max-new-tokens", "2",
        ])
        XCTAssertEqual(generate.status, 0, generate.err)
        XCTAssertFalse(generate.out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, generate.out)
    }
}
