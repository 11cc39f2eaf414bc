import Foundation
import XCTest

/// Misuse of the model-reading commands (issue 16): each is refused with a message that says what
/// is wrong and what to pass, and exits with status 1, never a trap (status 132/133/134 or a signal).
final class MisuseCLITests: XCTestCase {
    /// A run directory of one training step of the tiny preset (vocabulary 4096, 1024 positions).
    private static let run: String = {
        let dir = NSTemporaryDirectory() + "kumo-misuse-\(UUID().uuidString)"
        let r = try? train(dir)
        XCTAssertEqual(r?.status, 0, r?.err ?? "")
        return dir
    }()

    private static func train(_ dir: String) throws -> (status: Int32, out: String, err: String) {
        try KumoProcess.run([
            "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=16",
            "--set", "train.micro_batch_size=1", "--set", "train.threads=1", "--set", "train.steps=1",
            "--run-dir", dir,
        ])
    }

    private func refused(_ args: [String], saying parts: [String], file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        // A refusal comes at start-up; a server that started instead is stopped after a minute.
        let r = try KumoProcess.run(args, timeout: 60)
        XCTAssertEqual(r.status, 1, "kumo \(args.joined(separator: " ")): \(r.err)", file: file, line: line)
        for part in parts {
            XCTAssertTrue(r.err.contains(part), "expected '\(part)' in: \(r.err)", file: file, line: line)
        }
    }

    func testRunDirectoryAsModelIsRefusedNamingItsWeightsFileInEveryCommand() throws {
        let dir = Self.run
        let tokens = dir + "/tokens.json"
        try Data("[[1, 2, 3]]".utf8).write(to: URL(fileURLWithPath: tokens))
        let hint = ["no config.json", "--model \(dir)/model.safetensors", "metrics.jsonl"]
        try refused(["logits", "--model", dir, "--tokens", tokens, "--out", dir + "/l.safetensors"], saying: hint)
        try refused(["generate", "--model", dir, "--tokenizer", "byte", "--prompt", "a"], saying: hint)
        try refused(["serve", "--model", dir, "--tokenizer", "byte", "--port", "0"], saying: hint)
        try refused(["convert", "--from", dir, "--to", dir + "/hf"], saying: hint)
        try refused(["eval", "--model", dir, "--tokenizer", "byte", "--tasks", "jnli"], saying: hint)
    }

    func testTruncatedWeightsFileIsReportedAsTruncatedAtItsLength() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: Self.run + "/model.safetensors"))
        let cut = Self.run + "/cut.safetensors"
        try whole.prefix(100_000).write(to: URL(fileURLWithPath: cut))
        try refused(
            ["generate", "--model", cut, "--tokenizer", "byte", "--prompt", "a"],
            saying: [cut, "truncated at byte 100000", "\(whole.count) bytes"])
    }

    func testTokenizerLargerThanTheModelIsRefusedAtStartUp() throws {
        let tokenizer = KumoProcess.sharedData.appendingPathComponent(
            "tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model"
        ).path
        let model = Self.run + "/model.safetensors"
        let sizes = ["99574 tokens", "vocabulary of 4096", tokenizer]
        try refused(["generate", "--model", model, "--tokenizer", tokenizer, "--prompt", "a"], saying: sizes)
        try refused(["serve", "--model", model, "--tokenizer", tokenizer, "--port", "0"], saying: sizes)
        try refused(["eval", "--model", model, "--tokenizer", tokenizer, "--tasks", "jcommonsenseqa"], saying: sizes)
    }

    func testEmptyPromptAndEmptyContextAreRefused() throws {
        let model = Self.run + "/model.safetensors"
        let base = ["--model", model, "--tokenizer", "byte", "--threads", "1"]
        try refused(["generate"] + base + ["--prompt", ""], saying: ["--prompt is empty"])
        try refused(["generate"] + base + ["--prompt", "a", "--context", "0"], saying: ["--context 0", "1...1024"])
        try refused(["serve"] + base + ["--port", "0", "--context", "0"], saying: ["--context 0", "1...1024"])
    }

    func testCacheSlotsBeyondMemoryAreRefusedWithNumbers() throws {
        try refused(
            [
                "serve", "--model", Self.run + "/model.safetensors", "--tokenizer", "byte", "--port", "0", "--slots",
                "100000000", "--kv-cache", "fp32",
            ],
            saying: ["100000000 slots of 1024 positions", "key/value caches 390625.00 GiB", "usable"])
    }

    func testTrainHelpListsEverySectionOfTheConfig() throws {
        let r = try KumoProcess.run(["train", "--help"])
        let help = r.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(help.contains("[model] [data] [train] [optim] [parallel] [checkpoint] [log] [eval]"), help)
    }

    /// Two identical runs write identical weight files (the JSON in the header has sorted keys).
    func testIdenticalRunsWriteIdenticalWeightFiles() throws {
        let other = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let r = try Self.train(other)
        XCTAssertEqual(r.status, 0, r.err)
        let first = try Data(contentsOf: URL(fileURLWithPath: Self.run + "/model.safetensors"))
        let second = try Data(contentsOf: URL(fileURLWithPath: other + "/model.safetensors"))
        XCTAssertTrue(first == second, "model.safetensors of two identical runs differ")
    }
}
