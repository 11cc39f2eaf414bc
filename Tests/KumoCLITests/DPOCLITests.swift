import Foundation
import XCTest

/// `train.objective = "dpo"`: a tiny run from a tiny `model.init` on preference pairs, its
/// resume, its data-parallel, ZeRO and tensor-parallel equivalents, and `kumo eval`'s
/// preference task.
final class DPOCLITests: XCTestCase {
    /// Writes `dir`/pairs.jsonl (one pair too long for a row of 32 tokens) and trains the tiny
    /// base model `dir`/base/model.safetensors for one step.
    private func prepare(_ dir: String) throws {
        var lines = (0..<7).map { i in
            #"{"prompt": "q\#(i)", "chosen_response": "yes, fine \#(i)", "rejected_response": "no!! \#(i * 7)"}"#
        }
        lines.append(
            #"{"prompt": "q", "chosen_response": "a very long answer that does not fit in one row", "rejected_response": "no"}"#
        )
        try lines.joined(separator: "\n").write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
        let base = try KumoProcess.run(
            ["train"] + TinyRun.args(micro: 2, global: 4, steps: 1) + ["--run-dir", dir + "/base"])
        XCTAssertEqual(base.status, 0, base.err)
    }

    /// A DPO run's arguments from `dir`'s base model and pairs.
    private func dpoArgs(_ dir: String, steps: Int, micro: Int = 2, global: Int = 4) -> [String] {
        [
            "--set", "model.init=\"\(dir)/base/model.safetensors\"", "--set", "data.format=\"preference\"",
            "--set", "train.objective=\"dpo\"", "--set", "data.path=[\"\(dir)/pairs.jsonl\"]",
            "--set", "data.tokenizer=\"byte\"", "--set", "data.chat_template=\"plain\"", "--set", "train.seq_length=32",
            "--set", "train.threads=1", "--set", "train.steps=\(steps)", "--set", "train.micro_batch_size=\(micro)",
            "--set", "train.global_batch_size=\(global)", "--set", "optim.lr=1e-3", "--set", "dpo.beta=0.5",
        ]
    }

    func testADPORunStartsAtLog2LearnsAndResumesAlike() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        try prepare(dir)
        let args = ["train"] + dpoArgs(dir, steps: 6) + ["--set", "optim.decay_steps=6"]
        let straight = try KumoProcess.run(args + ["--run-dir", dir + "/straight"])
        XCTAssertEqual(straight.status, 0, straight.err)
        let trainLog = try String(contentsOfFile: dir + "/straight/train.log", encoding: .utf8)
        XCTAssertTrue(trainLog.contains("8 preference pairs, 8 used, over-long: 1 truncated"), trainLog)
        XCTAssertTrue(
            trainLog.contains("dpo: reference log-probabilities of 8 pairs from the initial weights"), trainLog)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/straight/dpo_reference_logps.f64"))
        let lines = try metricsLines(dir + "/straight")
        let losses = try metricsLosses(dir + "/straight")
        XCTAssertEqual(losses.count, 6)
        XCTAssertEqual(losses[0], log(2), accuracy: 1e-4, "the policy is the reference at step 1")
        XCTAssertLessThan(losses[4...].reduce(0, +) / 2, log(2) - 0.02, "\(losses)")
        for key in ["rewards_chosen", "rewards_rejected", "rewards_accuracy", "rewards_margin", "logps_chosen"]
            + ["logps_rejected"]
        {
            XCTAssertNotNil(lines[5]["dpo." + key] as? Double, "dpo.\(key) in \(lines[5])")
        }
        XCTAssertEqual(lines[0]["dpo.rewards_margin"] as? Double, 0)
        XCTAssertGreaterThan(try XCTUnwrap(lines[5]["dpo.rewards_margin"] as? Double), 0)
        XCTAssertLessThan(try XCTUnwrap(lines[5]["dpo.logps_chosen"] as? Double), 0)

        let first = try KumoProcess.run(
            args + ["--set", "train.steps=3", "--set", "checkpoint.every=3", "--run-dir", dir + "/resumed"])
        XCTAssertEqual(first.status, 0, first.err)
        let resumed = try KumoProcess.run([
            "train", "--resume", "latest", "--set", "train.steps=6", "--run-dir", dir + "/resumed",
        ])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        let resumedLog = try String(contentsOfFile: dir + "/resumed/train.log", encoding: .utf8)
        XCTAssertTrue(resumedLog.contains("dpo: read the reference log-probabilities of 8 pairs"), resumedLog)
        XCTAssertEqual(try metricsLosses(dir + "/resumed"), losses)
    }

    func testAReferenceModelGivesTheReferenceAndTheRunTrainsFromModelInit() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        try prepare(dir)
        let other = try KumoProcess.run(
            ["train"] + TinyRun.args(micro: 2, global: 4, steps: 3) + ["--run-dir", dir + "/other"])
        XCTAssertEqual(other.status, 0, other.err)
        let args = ["train"] + dpoArgs(dir, steps: 1)
        let plain = try KumoProcess.run(args + ["--run-dir", dir + "/plain"])
        XCTAssertEqual(plain.status, 0, plain.err)
        let referenced = try KumoProcess.run(
            args + ["--set", "dpo.reference=\"\(dir)/other/model.safetensors\"", "--run-dir", dir + "/referenced"])
        XCTAssertEqual(referenced.status, 0, referenced.err)
        let (a, b) = (try metricsLines(dir + "/plain")[0], try metricsLines(dir + "/referenced")[0])
        XCTAssertEqual(a["dpo.logps_chosen"] as? Double, b["dpo.logps_chosen"] as? Double, "policy: model.init")
        XCTAssertEqual(a["dpo.logps_rejected"] as? Double, b["dpo.logps_rejected"] as? Double)
        XCTAssertGreaterThan(abs(try XCTUnwrap(b["loss"] as? Double) - log(2)), 1e-3, "reference: the other model")
        XCTAssertNotEqual(b["dpo.rewards_chosen"] as? Double, 0)
    }

    func testDataParallelZeRO2And3AndTensorParallelDPOMatchOneRank() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        try prepare(dir)
        let args = dpoArgs(dir, steps: 5, micro: 1, global: 4)
        let one = try trainRun(ranks: 1, args)
        let two = try trainRun(ranks: 2, args)
        assertEquivalent(two, one, "dp=2")
        // The dpo.* metrics are global-batch means: the same on two ranks as on one.
        for (a, b) in zip(two.metrics, one.metrics) {
            for key in ["dpo.logps_chosen", "dpo.logps_rejected", "dpo.rewards_margin", "dpo.rewards_accuracy"] {
                XCTAssertEqual(try XCTUnwrap(a[key] as? Double), try XCTUnwrap(b[key] as? Double), accuracy: 1e-4, key)
            }
        }
        assertEquivalent(try trainRun(ranks: 2, args + ["--set", "parallel.zero_stage=2"]), one, "dp=2 ZeRO-2")
        assertEquivalent(try trainRun(ranks: 2, args + ["--set", "parallel.zero_stage=3"]), one, "dp=2 ZeRO-3")
        assertEquivalent(try trainRun(ranks: 2, args + ["--set", "parallel.tensor=2"]), one, "tp=2")
    }

    func testPipelineParallelDPOIsRefused() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let r = try KumoProcess.run([
            "train", "--set", "model.preset=tiny", "--set", "data.format=\"preference\"", "--set",
            "train.objective=\"dpo\"", "--set", "data.path=[\"\(dir)/pairs.jsonl\"]", "--set",
            "dpo.reference=\"\(dir)/reference\"", "--set", "parallel.pipeline=2", "--run-dir", dir + "/run",
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("with parallel.pipeline > 1 is not supported yet"), r.err)
    }

    func testPreferenceEvalScoresPairsAndRewardsAgainstAReference() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        try prepare(dir)
        let run = try KumoProcess.run(["train"] + dpoArgs(dir, steps: 6) + ["--run-dir", dir + "/run"])
        XCTAssertEqual(run.status, 0, run.err)
        func eval(_ model: String, _ name: String) throws -> [String: Double] {
            let r = try KumoProcess.run([
                "eval", "--model", model, "--tokenizer", "byte", "--tasks", "preference", "--corpus",
                dir + "/pairs.jsonl", "--chat-template", "plain", "--ref-model", dir + "/base/model.safetensors",
                "--beta", "0.5", "--output", dir + "/\(name).json", "--dump-prompts", dir + "/\(name).jsonl",
            ])
            XCTAssertEqual(r.status, 0, r.err)
            let json = try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: dir + "/\(name).json")))
            let results = try XCTUnwrap((json as? [String: Any])?["results"] as? [String: Any])
            return try XCTUnwrap(results["preference"] as? [String: Double])
        }
        let base = try eval(dir + "/base/model.safetensors", "base")
        XCTAssertEqual(base["eos_id"], 256)
        XCTAssertEqual(base["reward_accuracy"], 0, "the reference against itself: no reward above another")
        XCTAssertEqual(try XCTUnwrap(base["dpo_loss"]), log(2), accuracy: 1e-9)
        let tuned = try eval(dir + "/run/model.safetensors", "tuned")
        XCTAssertGreaterThan(try XCTUnwrap(tuned["reward_accuracy"]), 0.5)
        XCTAssertLessThan(try XCTUnwrap(tuned["dpo_loss"]), log(2))
        let dump = try String(contentsOfFile: dir + "/tuned.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(dump.count, 8)
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(dump[0].utf8)) as? [String: Any])
        XCTAssertEqual(first["prompt"] as? String, "q0\n")
        XCTAssertEqual(first["chosen"] as? String, "yes, fine 0")
        XCTAssertEqual(first["rejected"] as? String, "no!! 0")
        let logps = try [first["chosen_logp"], first["rejected_logp"]].map { try XCTUnwrap($0 as? Double) }
        XCTAssertTrue(logps.allSatisfy { $0 < 0 }, "\(logps)")
        let hits = dump.filter { line in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (o["chosen_logp"] as! Double) > (o["rejected_logp"] as! Double)
        }
        XCTAssertEqual(tuned["accuracy"], Double(hits.count) / 8)
    }
}
