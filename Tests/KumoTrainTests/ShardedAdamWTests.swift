import KumoCore
import KumoModel
import XCTest

@testable import KumoTrain

final class ShardedAdamWTests: XCTestCase {
    func testShardedUpdatesTogetherEqualTheWholeBufferUpdate() throws {
        let config = ModelConfig(
            vocabSize: 50, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2, numAttentionHeads: 2,
            maxPositionEmbeddings: 16)
        let whole = try LlamaModel(config: config)
        let sharded = try LlamaModel(config: config)
        whole.initializeWeights(seed: 3)
        sharded.initializeWeights(seed: 3)
        var rng = SeededRandom(seed: 11)
        for i in 0..<whole.grads.count { whole.grads[i] = Float(rng.normal()) }
        sharded.grads.pointer.update(from: whole.grads.pointer, count: whole.grads.count)
        let layout = whole.layout
        let settings = AdamWSettings(weightDecay: 0.1, gradClip: 1)
        let full = AdamW(layout: layout, settings: settings)
        // Three uneven shards whose cuts fall inside tensors.
        let cuts = [0, layout.count / 3 + 5, 2 * layout.count / 3 - 7, layout.count]
        let shards = (0..<3).map { AdamW(layout: layout, settings: settings, shard: cuts[$0]..<cuts[$0 + 1]) }
        XCTAssertEqual(shards.map(\.stateBytes).reduce(0, +), full.stateBytes)
        for _ in 0..<3 {
            let norm = AdamW.gradNorm(whole.grads)
            full.update(params: whole.params, grads: whole.grads, lr: 1e-2, gradNorm: norm)
            for s in shards { s.update(params: sharded.params, grads: sharded.grads, lr: 1e-2, gradNorm: norm) }
        }
        XCTAssertEqual(sharded.params.array, whole.params.array)
        XCTAssertNotEqual(whole.params.array, try initial(config))
    }

    private func initial(_ config: ModelConfig) throws -> [Float] {
        let m = try LlamaModel(config: config)
        m.initializeWeights(seed: 3)
        return m.params.array
    }
}
