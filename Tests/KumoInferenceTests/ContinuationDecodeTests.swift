import KumoCore
import KumoModel
import XCTest

@testable import KumoInference

/// One decode call may feed several consecutive tokens of a slot (scoring continuations relies on it).
final class ContinuationDecodeTests: XCTestCase {
    func testSeveralTokensOfOneSlotInOneCallMatchFullForward() throws {
        let config = ModelConfig(
            vocabSize: 53, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 32)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 11, std: 0.3)
        let prompt: [Int32] = (0..<9).map { Int32($0 * 5 % 53) }
        let continuations: [[Int32]] = [[3, 17, 40, 8], [22, 1, 9]]
        let engine = InferenceEngine(model: model, slots: 2, capacity: 16)
        engine.prefill(slot: 0, tokens: prompt)
        engine.cache.copyPrefix(from: 0, to: 1, count: prompt.count)
        var tokens: [Int32] = []
        var slots: [Int32] = []
        var positions: [Int32] = []
        for (slot, continuation) in continuations.enumerated() {
            for (j, token) in continuation.enumerated() {
                tokens.append(token)
                slots.append(Int32(slot))
                positions.append(Int32(prompt.count + j))
            }
        }
        let logits = engine.decode(tokens: tokens, slots: slots, positions: positions)
        let v = config.vocabSize
        var worst: Float = 0
        var row = 0
        for continuation in continuations {
            let all = prompt + continuation
            let reference = all.withUnsafeBufferPointer {
                model.forward(tokens: $0.baseAddress!, batch: 1, seqLen: all.count)
            }
            for j in continuation.indices {
                let expected = reference + (prompt.count + j) * v
                for i in 0..<v { worst = max(worst, abs(logits[row * v + i] - expected[i])) }
                row += 1
            }
        }
        XCTAssertLessThan(worst, 1e-4, "one-call continuation decoding vs full forward: max |Δlogit| \(worst)")
    }
}
