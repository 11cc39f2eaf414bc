import Foundation
import KumoCore
import KumoModel
import XCTest

@testable import KumoInterop

/// Mixtral directories written by transformers (tests/KumoInteropTests/Golden, from
/// `scripts/hf_reference.py mixtral-fixture`): both tensor namings load to the same model, whose
/// logits match transformers'; what Kumo cannot run is refused by name.
final class MixtralInteropTests: XCTestCase {
    /// The fixture's config.json with `changes` applied (nil removes a key).
    private func fixtureConfig(_ changes: [String: Any?]) throws -> Data {
        let data = try Data(contentsOf: URL(fileURLWithPath: Reference.mixtral + "/config.json"))
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for (key, value) in changes { json[key] = value }
        return try JSONSerialization.data(withJSONObject: json)
    }

    /// The message `HFConfig.parse` throws for the fixture's config.json with `changes`.
    private func refusal(_ changes: [String: Any?]) throws -> String {
        do {
            _ = try HFConfig.parse(try fixtureConfig(changes), path: "config.json")
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    func testTransformersMixtralLoadsUnderEitherTensorNamingAndMatchesItsLogits() throws {
        Threads.set(1)
        let model = try HFCheckpoint.load(from: Reference.mixtral)
        let c = model.config
        XCTAssertEqual([c.numLocalExperts, c.numExpertsPerTok, c.vocabSize, c.numKeyValueHeads], [4, 2, 260, 2])
        XCTAssertEqual(c.ropeTheta, 1e6, "rope_theta inside rope_parameters")
        XCTAssertEqual(c.routerAuxLossCoef, 0.001)
        XCTAssertFalse(c.outputRouterLogits)
        let fused = try HFCheckpoint.load(from: Reference.mixtralFused)
        XCTAssertEqual(fused.config, c)
        let differing = (0..<model.layout.count).filter { fused.params[$0] != model.params[$0] }.count
        XCTAssertEqual(differing, 0, "\(differing) parameters differ between the fused and per-expert files")

        let reference = try SafeTensorsFile(path: Reference.mixtralLogits)
        let ids = try reference.int32s("input_ids")
        let expected = try reference.floats("logits")
        let logits = ids.withUnsafeBufferPointer { model.forward(tokens: $0.baseAddress!, batch: 2, seqLen: 12) }
        let maxDiff = zip(UnsafeBufferPointer(start: logits, count: expected.count), expected).map { abs($0 - $1) }
            .max()
        print("transformers' Mixtral: max |kumo − transformers| logit difference \(maxDiff ?? .infinity)")
        XCTAssertLessThan(maxDiff ?? .infinity, 1e-4)
        XCTAssertGreaterThan(expected.map(abs).max() ?? 0, 0.1, "logits too small for the comparison to mean much")
    }

    func testWhatKumoCannotRunIsRefusedByName() throws {
        let window = try refusal(["sliding_window": 32])
        XCTAssertTrue(window.contains("sliding_window 32") && window.contains("max_position_embeddings"), window)
        XCTAssertEqual(try refusal(["sliding_window": 64]), "accepted", "a window as long as the context is exact")
        let headDim = try refusal(["head_dim": 16])
        XCTAssertTrue(headDim.contains("head_dim 16"), headDim)
        let experts = try refusal(["num_local_experts": 100_000])
        XCTAssertTrue(experts.contains("num_local_experts 100000"), experts)
        let topK = try refusal(["num_experts_per_tok": 5])
        XCTAssertTrue(topK.contains("num_experts_per_tok"), topK)
        let mismatch = try refusal(["architectures": ["LlamaForCausalLM"]])
        XCTAssertTrue(mismatch.contains("do not include MixtralForCausalLM"), mismatch)
        let llama = try refusal(["model_type": "llama", "architectures": nil])
        XCTAssertTrue(llama.contains("num_local_experts is set for model_type \"llama\""), llama)
        XCTAssertEqual(
            HFConfig.ignoredSettings(try fixtureConfig([:])).count, 1, "router_jitter_noise 0.01 is reported")
        XCTAssertEqual(HFConfig.ignoredSettings(try fixtureConfig(["router_jitter_noise": 0])), [])
    }

    /// Float fields keep a decimal point even when integral (transformers refuses `0` for a float),
    /// and the written config.json reads back to the same configuration.
    func testWrittenMixtralConfigKeepsFloatsFloatAndReadsBack() throws {
        let config = ModelConfig(
            vocabSize: 64, hiddenSize: 32, intermediateSize: 24, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, ropeTheta: 10000, rmsNormEps: 1e-5, numLocalExperts: 4, routerAuxLossCoef: 0,
            routerZLossCoef: 1)
        let data = try HFConfig.json(config)
        let text = String(decoding: data, as: UTF8.self)
        for key in [
            "router_aux_loss_coef\"\\s*:\\s*0\\.0", "router_z_loss_coef\"\\s*:\\s*1\\.0",
            "rope_theta\"\\s*:\\s*10000\\.0",
        ] {
            XCTAssertNotNil(text.range(of: "\"" + key, options: .regularExpression), "\(key) in \(text)")
        }
        XCTAssertEqual(try HFConfig.parse(data, path: "config.json"), config)
    }

    func testMixtureOfExpertsIsRefusedForGGUFBothWays() throws {
        let dir = try Reference.temporaryDirectory(for: self)
        XCTAssertThrowsError(
            try GGUFWriter.write(try HFCheckpoint.load(from: Reference.mixtral), to: dir + "/m.gguf")
        ) { XCTAssertTrue("\($0)".contains("mixture of experts"), "\($0)") }
        var b = GGUFBuilder()
        b.metadata = [("general.architecture", .string("llama")), ("llama.expert_count", .u32(8))]
        XCTAssertThrowsError(try GGUFLlama.config(try GGUFFile(data: b.build(), path: "moe.gguf"))) {
            XCTAssertTrue("\($0)".contains("llama.expert_count 8"), "\($0)")
        }
    }

    /// A directory with `config.json` from the fixture and `tensors` as its model.safetensors.
    private func directory(_ tensors: [(String, [Int])]) throws -> String {
        let dir = try Reference.temporaryDirectory(for: self)
        try FileManager.default.copyItem(atPath: Reference.mixtral + "/config.json", toPath: dir + "/config.json")
        let values = [Float](repeating: 0.5, count: tensors.map { $0.1.reduce(1, *) }.max() ?? 0)
        try values.withUnsafeBufferPointer { v in
            try SafeTensorsWriter.write(
                tensors.map {
                    .init(name: $0.0, shape: $0.1, values: UnsafeBufferPointer(rebasing: v[0..<$0.1.reduce(1, *)]))
                }, to: dir + "/model.safetensors")
        }
        return dir
    }

    func testFusedTensorsOfTheWrongShapeOrBesideTheirPerExpertCopiesAreRefused() throws {
        let f = try SafeTensorsFile(path: Reference.mixtralFused + "/model.safetensors")
        var tensors = f.entries.map { ($0.key, $0.value.shape) }
        let gateUp = "model.layers.1.mlp.experts.gate_up_proj"
        let wrong = tensors.map { $0.0 == gateUp ? ($0.0, [4, 24, 32]) : $0 }
        XCTAssertThrowsError(try HFCheckpoint.load(from: try directory(wrong))) {
            XCTAssertTrue("\($0)".contains("\(gateUp) has shape [4, 24, 32]; config.json implies [4, 48, 32]"), "\($0)")
        }
        tensors.append(("model.layers.0.block_sparse_moe.experts.2.w2.weight", [32, 24]))
        XCTAssertThrowsError(try HFCheckpoint.load(from: try directory(tensors))) {
            XCTAssertTrue("\($0)".contains("two copies of the same weights"), "\($0)")
        }
    }
}
