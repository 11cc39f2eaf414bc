import KumoCore
import XCTest

@testable import KumoInference
@testable import KumoModel

/// The inference engine's size check: every allocation it makes is counted, and an engine that does
/// not fit, or has no positions or slots, is refused with numbers instead of trapping or aborting.
final class EngineSizeTests: XCTestCase {
    private func model() throws -> LlamaModel {
        try LlamaModel(
            config: ModelConfig(
                vocabSize: 97, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
                numKeyValueHeads: 2, maxPositionEmbeddings: 128))
    }

    /// A bf16 cache takes half the bytes of an fp32 one, and the estimate counts what it allocates.
    func testBF16CacheIsCountedAtHalfTheBytes() throws {
        let m = try model()
        let engine = try InferenceEngine.checked(model: m, slots: 3, capacity: 100, kvCache: .bf16)
        let bf16 = InferenceEngine.cacheBytes(config: m.config, slots: 3, capacity: 100, kvCache: .bf16)
        XCTAssertEqual(bf16, Double(engine.cache.bytes))
        XCTAssertEqual(2 * bf16, InferenceEngine.cacheBytes(config: m.config, slots: 3, capacity: 100))
    }

    func testEstimateCountsTheCacheExactlyAndBoundsWhatPrefillAllocates() throws {
        let m = try model()
        let engine = try InferenceEngine.checked(model: m, slots: 3, capacity: 100)
        let cache = InferenceEngine.cacheBytes(config: m.config, slots: 3, capacity: 100)
        XCTAssertEqual(cache, Double(engine.cache.bytes))
        let needed = InferenceEngine.bytesNeeded(config: m.config, slots: 3, capacity: 100, format: .fp32)
        let before = SystemInfo.peakRSSBytes
        engine.prefill(slot: 0, tokens: (0..<100).map { Int32($0 % 97) })
        let grown = SystemInfo.peakRSSBytes - before
        print("estimate \(needed) bytes; cache \(cache); peak RSS grew \(grown) bytes in a full-context prefill")
        XCTAssertGreaterThan(needed, cache + 4 * 4 * 100 * 100, "the prefill's attention probabilities are counted")
        XCTAssertLessThan(Double(grown), needed, "prefill allocated more than the estimate")
    }

    /// The generation buffers' per-row count is what they allocate, a mixture's routing and its k
    /// experts' products included; an int8 mixture copies only its attention matrices and head.
    func testMixtureOfExpertsBuffersAndWeightCopiesAreCounted() throws {
        for experts in [0, 4] {
            let c = ModelConfig(
                vocabSize: 97, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
                numKeyValueHeads: 2, maxPositionEmbeddings: 128, numLocalExperts: experts, numExpertsPerTok: 3)
            let buffers = GenerationBuffers(config: c, capacity: 100)
            buffers.ensure(rows: 10)
            XCTAssertEqual(
                buffers.activations.floatCount + buffers.scores.count,
                10 * GenerationBuffers.floatsPerRow(c, capacity: 100), "\(experts) experts")
        }
        let moe = ModelConfig(
            vocabSize: 97, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, numLocalExperts: 4)
        XCTAssertEqual(InferenceEngine.copiedWeights(moe), Double(2 * (64 * 64 * 2 + 32 * 64 * 2) + 97 * 64))
    }

    func testEmptyContextNoSlotsAndTooManySlotsAreRefusedWithNumbers() throws {
        let m = try model()
        func message(slots: Int, capacity: Int, available: Int = 1 << 40) -> String {
            do {
                _ = try InferenceEngine.checked(model: m, slots: slots, capacity: capacity, available: available)
                return "built"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message(slots: 1, capacity: 0).contains("need 1...128"), message(slots: 1, capacity: 0))
        XCTAssertTrue(message(slots: 1, capacity: 129).contains("need 1...128"))
        XCTAssertTrue(message(slots: 0, capacity: 8).contains("at least 1"))
        // 10^15 slots would overflow an Int product of the cache's size; the estimate is in Double.
        let huge = message(slots: 1_000_000_000_000_000, capacity: 128)
        XCTAssertTrue(huge.contains("1000000000000000 slots of 128 positions") && huge.contains("usable"), huge)
        let tight = message(slots: 4, capacity: 128, available: 1 << 20)
        XCTAssertTrue(tight.contains("lower the slots or the context"), tight)
        XCTAssertEqual(message(slots: 4, capacity: 128), "built")
    }
}
