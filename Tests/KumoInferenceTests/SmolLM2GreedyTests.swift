import Foundation
import KumoCore
import KumoData
import KumoInterop
import XCTest

@testable import KumoInference

/// SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32): Kumo's chat rendering, prompt ids and greedy
/// tokens equal transformers' (Golden/smollm2_greedy.json, written by scripts/generate_reference.py).
final class SmolLM2GreedyTests: XCTestCase {
    struct Case: Decodable {
        var prompt: String?
        var messages: [ChatMessage]?
        var rendered: String
        var promptIds: [Int32]
        var outputIds: [Int32]
    }
    struct Golden: Decodable {
        var eosTokenId: Int32
        var newTokens: Int
        var cases: [Case]
    }

    private func load() throws -> (ServedModel, Golden) {
        let served = try SmolLM2Fixture.load()
        let data = try Data(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("Golden/smollm2_greedy.json"))
        return (
            served,
            try {
                let decoder = JSONDecoder()
                decoder.keyDecodingStrategy = .convertFromSnakeCase
                return try decoder.decode(Golden.self, from: data)
            }()
        )
    }

    func testChatMLRenderingAndPromptIdsEqualTransformers() throws {
        let (served, golden) = try load()
        guard case .chatML(let system)? = served.chatTemplate else {
            return XCTFail(
                "the GGUF's chat template was not recognised as ChatML: \(String(describing: served.chatTemplate))")
        }
        XCTAssertEqual(system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        for c in golden.cases {
            let text = c.messages.map { served.chatTemplate!.render($0) } ?? c.prompt!
            XCTAssertEqual(text, c.rendered)
            XCTAssertEqual(try served.encode(text), c.promptIds, "prompt ids of \(text.debugDescription)")
        }
    }

    private func checkGreedy(
        _ format: WeightFormat, kvCache: KVCacheFormat = .fp32, minimumAgreement: Double
    ) throws {
        let (served, golden) = try load()
        let engine = InferenceEngine(
            model: served.model, slots: golden.cases.count, capacity: 256, format: format, kvCache: kvCache)
        let generator = Generator(engine: engine, tokenizer: served.tokenizer)
        let requests = golden.cases.map {
            GenerationRequest(prompt: $0.promptIds, maxNewTokens: golden.newTokens, stopTokens: [golden.eosTokenId])
        }
        let results = generator.generate(requests)
        var agreeing = 0
        var total = 0
        for (c, r) in zip(golden.cases, results) {
            let prefix = zip(c.outputIds, r.tokens).prefix { $0 == $1 }.count
            agreeing += prefix
            total += c.outputIds.count
            if minimumAgreement == 1 {
                XCTAssertEqual(r.tokens, c.outputIds, "greedy tokens for \(c.rendered.debugDescription)")
            }
        }
        let agreement = Double(agreeing) / Double(total)
        print(
            "greedy \(format), \(kvCache) cache: \(agreeing)/\(total) tokens agree with transformers fp32 before the first difference"
        )
        XCTAssertGreaterThanOrEqual(
            agreement, minimumAgreement, "\(format), \(kvCache) cache: \(agreeing)/\(total) tokens agree")
    }

    func testGreedyTokensEqualTransformersFP32() throws {
        try checkGreedy(.fp32, minimumAgreement: 1)
    }

    func testInt8GreedyTokensMostlyAgreeWithFP32() throws {
        try checkGreedy(.int8, minimumAgreement: 0.5)
    }

    func testBF16CacheGreedyTokensMostlyAgreeWithFP32() throws {
        try checkGreedy(.fp32, kvCache: .bf16, minimumAgreement: 0.75)
    }
}
