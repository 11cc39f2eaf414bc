import Foundation
import KumoCore
import KumoData
import XCTest

@testable import KumoTrain

/// Supervised fine-tuning in the trainer: the data a run reads from SFT records, and the loss
/// averaged over the response tokens of the whole global batch, however it is split.
final class SFTTrainingTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "kumo-sft-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// Writes `records` (instruction, output) as SFT JSON lines and returns the file.
    private func records(_ records: [(String, String)]) throws -> String {
        let file = directory + "/sft.jsonl"
        let lines = try records.map { instruction, output in
            String(
                decoding: try JSONSerialization.data(withJSONObject: ["instruction": instruction, "output": output]),
                as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    private func config(_ file: String, _ overrides: [String]) throws -> RunConfig {
        try RunConfig.load(
            path: nil,
            overrides: [
                "model.vocab_size=384", "model.hidden_size=32", "model.intermediate_size=48",
                "model.num_hidden_layers=2", "model.num_attention_heads=4", "model.num_key_value_heads=2",
                "model.max_position_embeddings=64", "data.synthetic=false", "data.path=\"\(file)\"",
                "data.format=\"sft\"", "train.objective=\"sft\"", "data.chat_template=\"plain\"",
                "train.seq_length=48", "train.threads=1", "optim.warmup_steps=2", "optim.lr=3e-3",
            ] + overrides)
    }

    private func run(_ c: RunConfig) throws -> (losses: [Double], norms: [Double], params: [Float]) {
        let trainer = try Trainer(config: c, stream: try TrainingData.make(c).stream, peakGFLOPs: 50)
        var metrics: [StepMetrics] = []
        for _ in 0..<c.steps { metrics.append(try trainer.trainStep()) }
        return (metrics.map(\.loss), metrics.map(\.gradNorm), trainer.model.params.array)
    }

    /// Instructions whose responses are one letter or forty: micro-batches of one row differ in
    /// scored tokens by an order of magnitude.
    private var unevenRecords: [(String, String)] {
        (0..<8).map { i in ("Say \(i)", i % 2 == 0 ? "k" : String(repeating: "response \(i) ", count: 4)) }
    }

    func testAccumulatedMicroBatchesNormaliseByTheWholeBatchsResponseTokens() throws {
        let file = try records(unevenRecords)
        let base = ["data.packing=false", "train.steps=3", "train.global_batch_size=4"]
        let accumulatedConfig = try config(file, base + ["train.micro_batch_size=1"])
        let source = try TrainingData.make(accumulatedConfig).stream
        let scored = try (0..<4).map { sample -> Int in
            let b = Batch(batch: 1, seqLen: 48)
            try b.load(from: source, firstSample: sample)
            return b.scoredTokens
        }
        XCTAssertGreaterThanOrEqual(scored.max()!, 5 * scored.min()!, "micro-batches of \(scored) response tokens")
        let accumulated = try run(accumulatedConfig)
        let whole = try run(try config(file, base + ["train.micro_batch_size=4"]))
        for step in 0..<3 {
            XCTAssertEqual(accumulated.losses[step], whole.losses[step], accuracy: 1e-5 * whole.losses[step])
            XCTAssertEqual(accumulated.norms[step], whole.norms[step], accuracy: 1e-4 * whole.norms[step])
        }
        let diff = zip(whole.params, accumulated.params).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(diff, 1e-5, "max parameter difference \(diff)")
    }

    func testDataSummaryCountsTruncatedSkippedAndEmptyExamples() throws {
        let long = String(repeating: "x", count: 100)
        let file = try records([("Hi", "Hello"), ("Echo", long), (long, "y"), ("Nothing", ""), ("Two", "2")])
        let truncating = try TrainingData.make(try config(file, []))
        let stats = try XCTUnwrap(truncating.sft)
        XCTAssertEqual(stats.examples, 5)
        XCTAssertEqual(stats.kept, 3)
        XCTAssertEqual(stats.truncated, 1)
        XCTAssertEqual(stats.skippedLongPrompt, 1)
        XCTAssertEqual(stats.skippedEmptyResponse, 1)
        XCTAssertTrue(truncating.summary.contains(stats.summary), truncating.summary)
        XCTAssertTrue(truncating.summary.contains("chat_template plain"), truncating.summary)
        XCTAssertTrue(truncating.summary.contains("5 records read"), truncating.summary)
        let skipping = try XCTUnwrap(TrainingData.make(try config(file, ["data.overlong=\"skip\""])).sft)
        XCTAssertEqual(skipping.skippedOverlong, 2)
        XCTAssertEqual(skipping.kept, 2)
    }

    func testNoExampleFittingARowIsRefusedNamingTheKeys() throws {
        let long = String(repeating: "x", count: 100)
        let file = try records([("Echo", long)])
        XCTAssertThrowsError(try TrainingData.make(try config(file, ["data.overlong=\"skip\""]))) { error in
            XCTAssertTrue("\(error)".contains("train.seq_length = 48"), "\(error)")
            XCTAssertTrue("\(error)".contains("data.overlong"), "\(error)")
        }
    }

    func testSFTTrainingLowersTheResponseLoss() throws {
        let file = try records((0..<6).map { ("Greet \($0)", "Hello, Kumo!") })
        let losses = try run(try config(file, ["train.steps=25", "train.micro_batch_size=4", "optim.lr=1e-2"])).losses
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "loss went \(losses.first!) → \(losses.last!)")
    }
}
