import Foundation
import KumoCore
import KumoModel
import XCTest

@testable import KumoInterop

/// GGUF models against transformers in fp32 over the same dequantized weights: SmolLM2-135M-Instruct
/// (Q4_1) on the golden file written by `scripts/hf_reference.py gguf-golden`, and a random model
/// written by gguf-py with every supported tensor type.
final class GGUFModelTests: XCTestCase {
    func testEveryTensorTypeWrittenByGGUFPyMatchesTransformers() throws {
        Threads.set(1)
        let dir = try Reference.temporaryDirectory(for: self)
        let exported = try Reference.randomModel(tied: false, kvHeads: 2)
        try HFCheckpoint.export(exported, to: dir + "/hf")
        // Q4_0, Q4_1, Q8_0, F16, BF16 and F32 tensors, Q/K rows in llama.cpp's order.
        try Reference.run(
            "python3", ["scripts/hf_reference.py", "quantized-gguf", "--model", dir + "/hf", "--out", dir + "/q.gguf"])
        let file = try GGUFFile(path: dir + "/q.gguf")
        XCTAssertEqual(Set(file.tensors.values.map(\.type)), Set(GGMLType.allCases))
        let model = try GGUFLlama.load(file)
        let maxDiff = try Reference.maxLogitDifference(
            model, transformersArgs: ["--model", dir, "--gguf-file", "q.gguf"], in: dir)
        print("gguf-py quantized model (Q4_0, Q4_1, Q8_0, F16, BF16): max logit difference \(maxDiff)")
        XCTAssertLessThan(maxDiff, 1e-4, "max |kumo − transformers| logit difference \(maxDiff)")
    }

    func testSmolLM2LogitsMatchTransformersAtEveryPosition() throws {
        if !FileManager.default.fileExists(atPath: Reference.smolLM2.path) {
            try Reference.run("sh", ["scripts/fetch_smollm2.sh"])
        }
        let file = try GGUFFile(path: Reference.smolLM2.path)
        let config = try GGUFLlama.config(file)
        XCTAssertEqual(config.numHiddenLayers, 30)
        XCTAssertEqual(config.numKeyValueHeads, 3)
        XCTAssertTrue(config.tieWordEmbeddings)
        let model = try GGUFLlama.load(file)
        XCTAssertEqual(model.grads.count, 0, "a model loaded to run forward allocates no gradients")

        let golden = try SafeTensorsFile(
            path: Reference.golden.appendingPathComponent("smollm2-q4_1-logits.safetensors").path)
        let inputs = try golden.int32s("input_ids")
        let shape = try XCTUnwrap(golden.entries["input_ids"]?.shape)
        let (batch, seqLen) = (shape[0], shape[1])
        let subset = try golden.int32s("subset_ids").map(Int.init)
        let subsetLogits = try golden.floats("subset_logits")
        let topIds = try golden.int32s("top_ids").map(Int.init)
        let topLogits = try golden.floats("top_logits")
        let top = topIds.count / (batch * seqLen)
        let vocab = config.vocabSize

        let logits = inputs.withUnsafeBufferPointer {
            model.forward(tokens: $0.baseAddress!, batch: batch, seqLen: seqLen)
        }
        var maxDiff: Float = 0
        var worst = ""
        for row in 0..<(batch * seqLen) {
            let ours = logits + row * vocab
            for (k, id) in subset.enumerated() {
                let d = abs(ours[id] - subsetLogits[row * subset.count + k])
                if d > maxDiff { (maxDiff, worst) = (d, "row \(row) id \(id)") }
            }
            for k in 0..<top {
                let d = abs(ours[topIds[row * top + k]] - topLogits[row * top + k])
                if d > maxDiff { (maxDiff, worst) = (d, "row \(row) top id \(topIds[row * top + k])") }
            }
            var best = 0
            for j in 1..<vocab where ours[j] > ours[best] { best = j }
            XCTAssertEqual(best, topIds[row * top], "top-1 token at row \(row)")
        }
        print("SmolLM2 Q4_1: max |kumo − transformers| logit difference \(maxDiff) at \(worst)")
        XCTAssertLessThan(maxDiff, 1e-3, "max logit difference \(maxDiff) at \(worst)")
    }
}
