import Foundation
import XCTest

/// End-to-end tests of the `kumo` executable built by `swift build -c release`.
final class KumoCLITests: XCTestCase {
    private let tinyArgs = [
        "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
        "--set", "train.micro_batch_size=2", "--set", "train.threads=1",
    ]

    private func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "kumo-cli-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testTrainWritesTheRunDirectoryAndShowsProgress() throws {
        let dir = temporaryDirectory()
        let r = try KumoProcess.run(["train"] + tinyArgs + ["--set", "train.steps=3", "--run-dir", dir])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("step 3/3"), r.err)
        XCTAssertTrue(r.err.contains("MFU") && r.err.contains("ETA") && r.err.contains("tok/s"), r.err)
        let config = try String(contentsOfFile: dir + "/config.toml", encoding: .utf8)
        XCTAssertTrue(config.contains("num_key_value_heads = 2") && config.contains("eps = 1e-08"), config)
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        for (i, line) in lines.enumerated() {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for key in ["step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "elapsed_s"] {
                XCTAssertNotNil(object[key], "metrics line \(i) lacks \(key)")
            }
            XCTAssertEqual(object["step"] as? Int, i + 1)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/train.log"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoints"))
    }

    func testSamplesAfterTrainingFitAnyContextEvenOneToken() throws {
        let dir = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let text = dir + "/text.jsonl"
        let line = "{\"text\": \"the quick brown fox jumps over the lazy dog\"}\n"
        try String(repeating: line, count: 20).write(toFile: text, atomically: true, encoding: .utf8)
        for seqLength in [1, 16] {
            let r = try KumoProcess.run(
                [
                    "train", "--set", "model.preset=tiny", "--set", "model.vocab_size=384", "--set",
                    "data.path=[\"\(text)\"]",
                    "--set", "data.tokenizer=\"byte\"", "--set", "train.seq_length=\(seqLength)", "--set",
                    "train.micro_batch_size=1", "--set", "train.threads=1", "--set", "train.steps=1", "--set",
                    "log.samples=[\"a long prompt, longer than the context\"]", "--set", "log.sample_tokens=4",
                    "--run-dir", dir + "/run\(seqLength)",
                ])
            XCTAssertEqual(r.status, 0, "seq_length \(seqLength): \(r.err)")
            XCTAssertTrue(r.out.contains("--- a long prompt"), r.out)
        }
    }

    func testBadKeyExitsNonZeroNamingTheKeyAndTheValidOnes() throws {
        let r = try KumoProcess.run(
            ["train"] + tinyArgs + ["--set", "optim.epsilon=1e-8", "--run-dir", temporaryDirectory()])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("optim.epsilon") && r.err.contains("eps"), r.err)
    }

    func testNonFiniteLossStopsWithAMessageNamingTheStep() throws {
        let r = try KumoProcess.run(
            ["train"] + tinyArgs + [
                "--set", "optim.lr=1e30", "--set", "optim.warmup_steps=0", "--set", "train.steps=5",
                "--run-dir", temporaryDirectory(),
            ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("step 2: non-finite"), r.err)
    }

    func testBenchTrainPrintsOneJSONObjectWithTheContractFields() throws {
        let r = try KumoProcess.run(["bench", "train"] + tinyArgs + ["--steps", "2", "--warmup", "0", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "stdout: \(r.out)")
        for key in ["tokens_per_s", "step_s_median", "mfu", "achieved_gflops", "peak_rss_bytes", "peak_gflops"] {
            let value = try XCTUnwrap(object[key] as? Double, "missing \(key)")
            XCTAssertGreaterThan(value, 0, key)
        }
        XCTAssertEqual(object["precision"] as? String, "fp32")
    }

    func testBenchTrainReportsThePrecisionAndTrainNamesTheBF16GEMM() throws {
        let short = tinyArgs + ["--set", "train.precision=bf16"]
        let bench = try KumoProcess.run(["bench", "train"] + short + ["--steps", "1", "--warmup", "0", "--json"])
        XCTAssertEqual(bench.status, 0, bench.err)
        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(bench.out.utf8)) as? [String: Any], "stdout: \(bench.out)")
        XCTAssertEqual(object["precision"] as? String, "bf16")
        XCTAssertTrue(["onednn", "widened"].contains(object["bf16_gemm"] as? String ?? ""), bench.out)
        let train = try KumoProcess.run(
            ["train"] + short + ["--set", "train.steps=1", "--run-dir", temporaryDirectory()])
        XCTAssertEqual(train.status, 0, train.err)
        // The measured choice or, without bf16 units or oneDNN, why the fallback runs.
        XCTAssertTrue(
            ["precision: bf16; bf16 GEMM", "no bf16 units", "libdnnl.so.2 not found"].contains {
                train.err.contains($0)
            }, train.err)
        XCTAssertTrue(train.err.contains("measured bf16 GEMM peak"), train.err)
    }

    func testEveryCommandHasHelp() throws {
        for command in [[], ["train"], ["bench"], ["bench", "train"]] {
            let r = try KumoProcess.run(command + ["--help"])
            XCTAssertEqual(r.status, 0, "\(command)")
            XCTAssertTrue(r.out.contains("USAGE"), "\(command): \(r.out)")
        }
    }
}
