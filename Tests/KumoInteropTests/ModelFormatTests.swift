import Foundation
import KumoData
import KumoInterop
import KumoModel
import XCTest

/// What `--model PATH` is taken for, and what a path that is no model is told (issue 16).
final class ModelFormatTests: XCTestCase {
    private func savedModel() throws -> (dir: String, path: String) {
        let config = ModelConfig(
            vocabSize: 16, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 2, numAttentionHeads: 2)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 3)
        let dir = try Reference.temporaryDirectory(for: self)
        try KumoWeights.save(model, to: dir + "/model.safetensors")
        return (dir, dir + "/model.safetensors")
    }

    private func detectionError(_ path: String) -> String {
        do {
            return "detected as \(try ModelFormat.detect(path))"
        } catch {
            return "\(error)"
        }
    }

    func testDirectoryWithoutConfigNamesWhatItHoldsAndItsWeightsFile() throws {
        let (dir, path) = try savedModel()
        FileManager.default.createFile(atPath: dir + "/metrics.jsonl", contents: Data())
        let message = detectionError(dir)
        XCTAssertTrue(message.contains("no config.json"), message)
        XCTAssertTrue(message.contains("metrics.jsonl, model.safetensors"), message)
        XCTAssertTrue(message.contains("--model \(path)"), message)
    }

    func testTruncatedWeightsFileIsReportedAsTruncatedAtItsLength() throws {
        let (dir, path) = try savedModel()
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir + "/cut.safetensors"
        try whole.prefix(whole.count - 100).write(to: URL(fileURLWithPath: cut))
        let message = detectionError(cut)
        XCTAssertTrue(message.contains("\(cut): truncated at byte \(whole.count - 100)"), message)
        XCTAssertTrue(message.contains("need \(whole.count) bytes"), message)
        let headerOnly = dir + "/header.safetensors"
        try whole.prefix(20).write(to: URL(fileURLWithPath: headerOnly))
        XCTAssertTrue(detectionError(headerOnly).contains("truncated at byte 20"), detectionError(headerOnly))
    }

    func testOtherFilesAreNeitherModelNorSafetensors() throws {
        let (dir, _) = try savedModel()
        FileManager.default.createFile(atPath: dir + "/notes.txt", contents: Data("hello, world\n".utf8))
        let message = detectionError(dir + "/notes.txt")
        XCTAssertTrue(message.contains("neither a Hugging Face directory"), message)
        XCTAssertTrue(detectionError(dir + "/missing").contains("does not exist"))
    }

    /// The configuration in the metadata is written with sorted keys, so identical runs write identical bytes.
    func testKumoWeightsMetadataIsKeySorted() throws {
        let (_, path) = try savedModel()
        let text = try XCTUnwrap(try SafeTensorsFile(path: path).metadata["kumo.config"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let sorted = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let key = try Regex(#""([a-z_]+)":"#)
        let keysInOrder = { (json: String) in json.matches(of: key).map { json[$0.range] } }
        XCTAssertEqual(keysInOrder(text), keysInOrder(String(decoding: sorted, as: UTF8.self)), text)
    }

    func testTokenizerRecordsAreFollowedAcrossRunsAndALoopIsRefused() throws {
        let config = ModelConfig(
            vocabSize: 300, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1, numAttentionHeads: 2)
        let model = try LlamaModel(config: config)
        let dir = try Reference.temporaryDirectory(for: self)
        // A run from another run's weights records that file: the chain ends at the byte tokenizer.
        try KumoWeights.save(model, to: dir + "/a.safetensors", tokenizer: "byte")
        try KumoWeights.save(model, to: dir + "/b.safetensors", tokenizer: dir + "/a.safetensors")
        XCTAssertEqual(try loadTokenizer(model: dir + "/b.safetensors").vocabSize, ByteTokenizer().vocabSize)
        // Two files that record each other.
        try KumoWeights.save(model, to: dir + "/a.safetensors", tokenizer: dir + "/b.safetensors")
        XCTAssertThrowsError(try loadTokenizer(model: dir + "/b.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("leads back to it"), "\(error)")
        }
    }
}
