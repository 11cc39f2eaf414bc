import KumoCore
import KumoData
import XCTest

@testable import KumoTrain

final class TrainerTests: XCTestCase {
    private func config(_ overrides: [String]) throws -> RunConfig {
        try RunConfig.load(
            path: nil,
            overrides: [
                "model.vocab_size=97", "model.hidden_size=32", "model.intermediate_size=48",
                "model.num_hidden_layers=2", "model.num_attention_heads=4", "model.num_key_value_heads=2",
                "model.max_position_embeddings=64", "data.synthetic=true", "train.seq_length=16", "train.threads=1",
                "optim.warmup_steps=2", "optim.lr=3e-3",
            ] + overrides)
    }

    private func run(_ c: RunConfig) throws -> (metrics: [StepMetrics], params: [Float]) { try trainSteps(c) }

    func testSameConfigAndSeedGiveBitIdenticalMetrics() throws {
        let c = try config(["train.steps=4", "train.micro_batch_size=2", "train.global_batch_size=4"])
        let a = try run(c)
        let b = try run(c)
        XCTAssertEqual(a.metrics.map(\.loss), b.metrics.map(\.loss))
        XCTAssertEqual(a.metrics.map(\.gradNorm), b.metrics.map(\.gradNorm))
        XCTAssertEqual(a.metrics.map(\.lr), b.metrics.map(\.lr))
        XCTAssertEqual(a.params, b.params)
        let other = try run(
            try config(["train.steps=4", "train.micro_batch_size=2", "train.global_batch_size=4", "train.seed=99"]))
        XCTAssertNotEqual(a.metrics.map(\.loss), other.metrics.map(\.loss))
    }

    func testGradientAccumulationMatchesOneLargeBatch() throws {
        let whole = try run(try config(["train.steps=3", "train.micro_batch_size=4", "train.global_batch_size=4"]))
        let accumulated = try run(
            try config(["train.steps=3", "train.micro_batch_size=1", "train.global_batch_size=4"]))
        assertSameTraining(whole, accumulated)
    }

    func testTrainingReducesLossOnRepetitiveData() throws {
        // A corpus that repeats one short sentence is learnable within a few steps.
        let dir = NSTemporaryDirectory() + "kumo-corpus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let line = "{\"text\": \"\(String(repeating: "京都は日本の古都です。Kyoto is old. ", count: 20))\"}\n"
        try String(repeating: line, count: 5).write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        let c = try config([
            "data.synthetic=false", "data.path=\"\(dir)\"", "model.vocab_size=384", "train.steps=30",
            "train.micro_batch_size=4", "optim.lr=1e-2",
        ])
        let m = try run(c).metrics
        XCTAssertLessThan(m.last!.loss, m.first!.loss * 0.5, "loss went \(m.first!.loss) → \(m.last!.loss)")
    }

    /// `data.reset_attention = true` on a corpus of short documents: every window restarts its
    /// positions after each end-of-document token, which changes the losses; synthetic tokens,
    /// having no documents, are refused naming the key.
    func testResetAttentionTrainsOnDocumentsAndIsRefusedForSyntheticTokens() throws {
        let dir = NSTemporaryDirectory() + "kumo-corpus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = (0..<40).map { "{\"text\": \"document \($0): \(String(repeating: "ab", count: $0 % 7))\"}\n" }
        try lines.joined().write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        let base = [
            "data.synthetic=false", "data.path=\"\(dir)\"", "model.vocab_size=384", "train.steps=3",
            "train.micro_batch_size=2", "train.global_batch_size=4",
        ]
        let reset = try config(base + ["data.reset_attention=true"])
        let data = try TrainingData.make(reset)
        let source = try XCTUnwrap(data.stream as? DocumentResetSource)
        XCTAssertEqual(source.eod, data.tokenizer?.eod)
        let batch = Batch(batch: 2, seqLen: 16)
        try batch.load(from: data.stream, firstSample: 0)
        XCTAssertTrue(batch.resetsPositions)
        let withReset = try run(reset).metrics
        let without = try run(try config(base)).metrics
        XCTAssertTrue(withReset.allSatisfy { $0.loss.isFinite && $0.gradNorm.isFinite })
        for (x, y) in zip(withReset, without) {
            XCTAssertNotEqual(x.loss, y.loss, "step \(x.step): the reset changes the loss")
        }
        XCTAssertThrowsError(try TrainingData.make(try config(["data.reset_attention=true"]))) { error in
            XCTAssertTrue("\(error)".contains("data.reset_attention"), "\(error)")
            XCTAssertTrue("\(error)".contains("data.synthetic"), "\(error)")
        }
    }

    func testNonFiniteLossStopsTheRunNamingTheStep() throws {
        let c = try config(["train.steps=3"])
        let trainer = try Trainer(config: c, stream: try TrainingData.make(c).stream, peakGFLOPs: 50)
        _ = try trainer.trainStep()
        let before = trainer.model.params.array
        trainer.model.params[trainer.model.layout.finalNorm] = .nan
        XCTAssertThrowsError(try trainer.trainStep()) { error in
            XCTAssertEqual((error as? NonFiniteError)?.step, 2)
            XCTAssertTrue("\(error)".contains("step 2"), "\(error)")
        }
        // The update was not applied: every other parameter is unchanged.
        let after = trainer.model.params.array
        XCTAssertEqual(after.enumerated().filter { $0.element != before[$0.offset] && !$0.element.isNaN }.count, 0)
    }

    func testAdamWDoesNotDecayNormWeights() throws {
        let c = try config(["train.steps=1", "optim.weight_decay=0.5"])
        let trainer = try Trainer(config: c, stream: try TrainingData.make(c).stream, peakGFLOPs: 50)
        trainer.model.zeroGrads()
        let before = trainer.model.params.array
        trainer.optimizer.update(params: trainer.model.params, grads: trainer.model.grads, lr: 0.1, gradNorm: 0)
        for t in trainer.model.layout.tensors {
            let i = t.offset
            let expected = t.decay ? before[i] * (1 - 0.1 * 0.5) : before[i]
            XCTAssertEqual(trainer.model.params[i], expected, accuracy: 1e-7, t.name)
        }
    }
}
