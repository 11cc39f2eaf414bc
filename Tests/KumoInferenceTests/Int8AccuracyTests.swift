import XCTest

@testable import KumoInference

/// Int8 weight-only decoding of SmolLM2-135M-Instruct stays close to fp32 decoding, logit by logit.
final class Int8AccuracyTests: XCTestCase {
    static let texts = [
        "The quick brown fox jumps over the lazy dog, and then it runs into the forest to find its friends.",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
        "東京は日本の首都であり、多くの人々が住んでいます。",
    ]

    /// Prefills each text's first tokens in an fp32 and an int8 engine, then feeds both the text's
    /// next tokens one by one and compares the decoded logits at every position.
    func testInt8DecodingLogitsStayWithinBoundOfFP32() throws {
        let served = try SmolLM2Fixture.load()
        let vocab = served.model.config.vocabSize
        let fp32 = InferenceEngine(model: served.model, slots: 1, capacity: 128, format: .fp32)
        let int8 = InferenceEngine(model: served.model, slots: 1, capacity: 128, format: .int8)
        let promptLength = 4
        var worst: Float = 0
        var worstRange: Float = 0
        var positions = 0
        for text in Self.texts {
            let ids = try served.encode(text)
            XCTAssertGreaterThan(ids.count, promptLength + 8, "too few tokens in \(text.debugDescription)")
            fp32.prefill(slot: 0, tokens: Array(ids.prefix(promptLength)))
            int8.prefill(slot: 0, tokens: Array(ids.prefix(promptLength)))
            for p in promptLength..<ids.count {
                let a = fp32.decode(tokens: [ids[p]], slots: [0], positions: [Int32(p)])
                let b = int8.decode(tokens: [ids[p]], slots: [0], positions: [Int32(p)])
                var lo = Float.infinity
                var hi = -Float.infinity
                for j in 0..<vocab {
                    worst = max(worst, abs(a[j] - b[j]))
                    lo = min(lo, a[j])
                    hi = max(hi, a[j])
                }
                worstRange = max(worstRange, hi - lo)
                positions += 1
            }
        }
        print(
            "int8 vs fp32 decoding over \(positions) positions: max |Δlogit| \(worst) (fp32 logit range up to \(worstRange))"
        )
        XCTAssertGreaterThan(worst, 0, "int8 decoding should not be bit-identical to fp32: were the weights quantized?")
        XCTAssertLessThan(worst, 2.5, "int8 vs fp32 decoding: max |Δlogit| \(worst) over \(positions) positions")
    }
}
