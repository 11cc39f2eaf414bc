import Foundation
import KumoCore
import KumoModel
import XCTest

@testable import KumoInterop

/// Kumo's Hugging Face export against transformers' LlamaForCausalLM, and the import back.
final class HFCheckpointTests: XCTestCase {
    private func check(tied: Bool, kvHeads: Int, experts: Int = 0) throws {
        Threads.set(1)
        let dir = try Reference.temporaryDirectory(for: self)
        let model = try Reference.randomModel(tied: tied, kvHeads: kvHeads, experts: experts)
        try HFCheckpoint.export(model, to: dir + "/export")
        let written =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: dir + "/export/config.json"))) as? [String: Any]
        XCTAssertEqual(
            written?["architectures"] as? [String], [experts > 0 ? "MixtralForCausalLM" : "LlamaForCausalLM"])
        let maxDiff = try Reference.maxLogitDifference(
            model, transformersArgs: ["--model", dir + "/export", "--resave", dir + "/resaved"], in: dir)
        XCTAssertLessThan(maxDiff, 1e-4, "max |kumo − transformers| logit difference \(maxDiff)")
        print("HF export (tied \(tied), kv heads \(kvHeads), experts \(experts)): max logit difference \(maxDiff)")

        // transformers' own save_pretrained output imports back to the same weights, bit for bit.
        let back = try HFCheckpoint.load(from: dir + "/resaved")
        XCTAssertEqual(back.config, model.config)
        XCTAssertEqual(back.grads.count, 0, "a model loaded to run forward allocates no gradients")
        let differing = (0..<model.layout.count).filter { back.params[$0] != model.params[$0] }.count
        XCTAssertEqual(differing, 0, "\(differing) parameters differ after export → transformers → import")
    }

    func testExportMatchesTransformersLogitsAndImportsBackIdenticallyGQA() throws {
        try check(tied: false, kvHeads: 2)
    }

    func testExportMatchesTransformersLogitsAndImportsBackIdenticallyTiedMHA() throws {
        try check(tied: true, kvHeads: 4)
    }

    /// A mixture of experts goes out as MixtralForCausalLM (router losses' settings included) and
    /// comes back from transformers' save_pretrained identical.
    func testMixtureOfExpertsExportMatchesTransformersMixtralAndImportsBackIdentically() throws {
        try check(tied: false, kvHeads: 2, experts: 4)
    }

    func testParallelLayersModelIsRefusedForHuggingFaceExport() throws {
        let config = ModelConfig(
            vocabSize: 16, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
            parallelLayers: true)
        let dir = try Reference.temporaryDirectory(for: self)
        XCTAssertThrowsError(try HFCheckpoint.export(try LlamaModel(config: config), to: dir + "/x")) {
            XCTAssertTrue("\($0)".contains("parallel_layers"), "\($0)")
        }
    }

    func testKumoWeightsFileRoundTripsAParallelLayersModel() throws {
        let config = ModelConfig(
            vocabSize: 16, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
            parallelLayers: true)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 5)
        let path = try Reference.temporaryDirectory(for: self) + "/m.safetensors"
        try KumoWeights.save(model, to: path)
        XCTAssertEqual(try ModelFormat.detect(path), .kumo)
        let back = try loadModel(path: path)
        XCTAssertEqual(back.config, config)
        XCTAssertTrue((0..<model.layout.count).allSatisfy { back.params[$0] == model.params[$0] })
    }

    func testConfigWithRopeScalingIsRefusedNamingTheKey() {
        let json =
            #"{"model_type":"llama","vocab_size":8,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"type":"linear","factor":2}}"#
        XCTAssertThrowsError(try HFConfig.parse(Data(json.utf8), path: "config.json")) {
            XCTAssertTrue("\($0)".contains("rope_scaling"), "\($0)")
        }
    }
}
