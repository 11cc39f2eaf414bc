import Foundation
import XCTest

/// `kumo train` with `train.objective = "sft"` on a tiny JSONL of instruction records: the loss
/// falls, checkpoints resume exactly, two data-parallel ranks with ZeRO match one rank, and
/// `kumo eval --tasks sft_loss` scores the trained model.
final class SFTCLITests: XCTestCase {
    /// Writes eight SFT records (responses of very different lengths) and returns the file.
    private func records(in dir: String) throws -> String {
        let file = dir + "/sft.jsonl"
        let lines = try (0..<8).map { i in
            let record = [
                "instruction": "Reply to message \(i)", "input": i % 3 == 0 ? "(politely)" : "",
                "output": i % 2 == 0 ? "OK." : "Thank you for message \(i); Kumo says hello.",
            ]
            return String(decoding: try JSONSerialization.data(withJSONObject: record), as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// A small model on byte tokens, trained on `file` for `steps` steps.
    private func args(_ file: String, steps: Int, micro: Int = 2) -> [String] {
        [
            "model.vocab_size=384", "model.hidden_size=64", "model.intermediate_size=128", "model.num_hidden_layers=2",
            "model.num_attention_heads=4", "model.num_key_value_heads=2", "model.max_position_embeddings=128",
            "data.synthetic=false", "data.path=\"\(file)\"", "data.format=\"sft\"", "train.objective=\"sft\"",
            "data.chat_template=\"plain\"", "train.seq_length=96", "train.threads=1", "train.steps=\(steps)",
            "train.micro_batch_size=\(micro)", "train.global_batch_size=4", "optim.lr=1e-2", "optim.warmup_steps=2",
        ].flatMap { ["--set", $0] }
    }

    func testSFTTrainingLowersTheLossCheckpointsAndResumesExactly() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let file = try records(in: dir)
        let run = dir + "/run"
        let r = try KumoProcess.run(
            ["train"] + args(file, steps: 16)
                + ["--set", "checkpoint.every=8", "--set", "checkpoint.keep=2", "--run-dir", run])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("data: sft records (chat_template plain, packing true"), r.err)
        XCTAssertTrue(r.err.contains("8 of 8 examples"), r.err)
        let recorded = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/data_sft.json")))
                as? [String: Any])
        XCTAssertEqual(recorded["kept"] as? Int, 8)
        XCTAssertEqual(recorded["skipped_empty_response"] as? Int, 0)
        let losses = try metricsLosses(run)
        XCTAssertEqual(losses.count, 16)
        XCTAssertLessThan(losses.last!, losses.first! * 0.6, "loss went \(losses.first!) → \(losses.last!)")
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").sorted()
        XCTAssertEqual(checkpoints, ["step-0000008", "step-0000016"])

        // A copy without its last checkpoint resumes at step 8 and repeats steps 9–16 bit for bit.
        let copy = dir + "/copy"
        try FileManager.default.copyItem(atPath: run, toPath: copy)
        try FileManager.default.removeItem(atPath: copy + "/checkpoints/step-0000016")
        let resumed = try KumoProcess.run(["train", "--resume", "latest", "--run-dir", copy])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.err.contains("step-0000008"), resumed.err)
        XCTAssertEqual(try metricsLosses(copy), losses)

        // sft_loss of the trained model on its own records, with the prompts as templated.
        let output = dir + "/eval.json"
        let eval = try KumoProcess.run([
            "eval", "--model", run + "/model.safetensors", "--tokenizer", "byte", "--tasks", "sft_loss", "--corpus",
            file, "--chat-template", "plain", "--dump-prompts", dir + "/prompts.jsonl", "--output", output,
        ])
        XCTAssertEqual(eval.status, 0, eval.err)
        let report = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let scores = try XCTUnwrap((report["results"] as? [String: Any])?["sft_loss"] as? [String: Any])
        XCTAssertEqual(scores["eos_id"] as? Double, 256)
        XCTAssertEqual(
            scores["tokens"] as? Double,
            Double(4 * 4 + 4 * ("Thank you for message 1; Kumo says hello.".utf8.count + 1)))
        XCTAssertLessThan(try XCTUnwrap(scores["loss"] as? Double), losses.first!, "the trained model fits its records")
        let prompts = try String(contentsOfFile: dir + "/prompts.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(prompts.count, 8)
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(prompts[0].utf8)) as? [String: String])
        XCTAssertEqual(first, ["prompt": "Reply to message 0\n\n(politely)\n", "response": "OK."])
    }

    func testSFTOnTwoRanksWithZeROMatchesOneRank() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let file = try records(in: dir)
        let one = try trainRun(ranks: 1, args(file, steps: 6, micro: 1))
        for stage in [1, 2] {
            let two = try trainRun(
                ranks: 2, args(file, steps: 6, micro: 1) + ["--set", "parallel.zero_stage=\(stage)"])
            assertEquivalent(two, one, "SFT, 2 ranks, ZeRO-\(stage)")
        }
    }

    func testSFTLossRunsDuringTrainingAndAnUnknownTemplateIsRefused() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let file = try records(in: dir)
        let run = dir + "/run"
        let r = try KumoProcess.run(
            ["train"] + args(file, steps: 2)
                + [
                    "--set", "eval.tasks=[\"sft_loss\"]", "--set", "eval.interval=2", "--set",
                    "eval.corpus=\"\(file)\"",
                    "--run-dir", run,
                ])
        XCTAssertEqual(r.status, 0, r.err)
        let evals = try metricsLines(run).filter { $0["eval.sft_loss.loss"] != nil }
        XCTAssertFalse(evals.isEmpty, r.err)
        XCTAssertEqual(evals.first?["eval.sft_loss.eos_id"] as? Double, 256)
        let refused = try KumoProcess.run([
            "eval", "--model", run + "/model.safetensors", "--tasks", "sft_loss", "--corpus", file,
            "--chat-template", "alpaca",
        ])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.err.contains("--chat-template 'alpaca'"), refused.err)
    }
}
