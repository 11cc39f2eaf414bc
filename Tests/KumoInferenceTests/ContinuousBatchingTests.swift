import KumoCore
import KumoData
import KumoModel
import XCTest

@testable import KumoInference

/// Requests join a decoding batch between steps and leave it when they end (continuous batching),
/// and produce the same tokens as when generated alone.
final class ContinuousBatchingTests: XCTestCase {
    private func generator() throws -> Generator {
        let config = ModelConfig(
            vocabSize: 257, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 64)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 11, std: 0.2)
        return Generator(engine: InferenceEngine(model: model, slots: 2, capacity: 64), tokenizer: ByteTokenizer())
    }

    func testRequestsJoinBetweenStepsAndReuseFreedSlots() throws {
        let gen = try generator()
        let long = GenerationRequest(prompt: [5, 17, 99, 3], maxNewTokens: 24)
        let short = GenerationRequest(prompt: [42, 7], maxNewTokens: 3)
        let alone = [long, short].map { gen.generate([$0])[0].tokens }

        let batch = DecodeBatch(generator: gen)
        var finished: [String: [Int32]] = [:]
        var order: [String] = []
        func done(_ name: String) -> (GenerationResult) -> Void {
            {
                finished[name] = $0.tokens
                order.append(name)
            }
        }
        batch.admit(long, done: done("long"))
        for _ in 0..<5 { batch.step() }
        XCTAssertEqual(batch.freeSlotCount, 1)
        batch.admit(short, done: done("short"))
        XCTAssertEqual(batch.freeSlotCount, 0)
        while finished["short"] == nil { batch.step() }
        XCTAssertNil(finished["long"], "the short request ends while the long one still decodes")
        XCTAssertEqual(batch.freeSlotCount, 1, "the short request's slot is free again")
        batch.admit(short, done: done("again"))
        while !batch.isEmpty { batch.step() }
        XCTAssertEqual(order, ["short", "again", "long"])
        XCTAssertEqual(finished["long"], alone[0], "the long request's tokens with others joining and leaving")
        XCTAssertEqual(finished["short"], alone[1], "a request joining mid-batch")
        XCTAssertEqual(finished["again"], alone[1], "a request in a reused slot")
        XCTAssertEqual(batch.freeSlotCount, 2)
    }

    /// A cancelled request leaves the batch before the next step and frees its slot; one cancelled
    /// before it is admitted ends at once, with nothing computed, while the others decode on.
    func testCancelledRequestsLeaveTheBatchAndFreeTheirSlots() throws {
        let gen = try generator()
        let cancellation = GenerationCancellation()
        let cancelled = GenerationRequest(prompt: [5, 17], maxNewTokens: 40, cancellation: cancellation)
        let other = GenerationRequest(prompt: [42, 7], maxNewTokens: 10)
        let batch = DecodeBatch(generator: gen)
        var results: [String: GenerationResult] = [:]
        batch.admit(cancelled) { results["cancelled"] = $0 }
        batch.admit(other) { results["other"] = $0 }
        for _ in 0..<3 { batch.step() }
        XCTAssertEqual(batch.freeSlotCount, 0)
        cancellation.cancel()
        batch.step()
        XCTAssertEqual(results["cancelled"]?.finishReason, .cancelled)
        XCTAssertEqual(results["cancelled"]?.tokens.count, 4, "the first token and three steps, none after")
        XCTAssertEqual(batch.freeSlotCount, 1, "the cancelled request's slot is free")
        batch.admit(cancelled) { results["late"] = $0 }
        XCTAssertEqual(results["late"]?.finishReason, .cancelled)
        XCTAssertEqual(results["late"]?.tokens, [])
        XCTAssertEqual(batch.freeSlotCount, 1)
        while !batch.isEmpty { batch.step() }
        XCTAssertEqual(results["other"]?.tokens, gen.generate([other])[0].tokens)
    }
}
