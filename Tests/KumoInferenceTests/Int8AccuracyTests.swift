import KumoCore
import XCTest

@testable import KumoInference

/// int8 (and bf16) decoding of SmolLM2-135M-Instruct stays close to fp32 decoding, logit by logit.
final class Int8AccuracyTests: XCTestCase {
    static let texts = [
        "The quick brown fox jumps over the lazy dog, and then it runs into the forest to find its friends.",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
        "東京は日本の首都であり、多くの人々が住んでいます。",
    ]

    /// Prefills each text's first tokens in an fp32 engine and one with `format` and `kvCache`, then
    /// feeds both the text's next tokens one by one; returns the largest logit difference, the widest
    /// fp32 logit range and the positions compared.
    private func compareWithFP32(
        _ format: WeightFormat, kvCache: KVCacheFormat = .fp32
    ) throws -> (worst: Float, range: Float, positions: Int) {
        let served = try SmolLM2Fixture.load()
        let vocab = served.model.config.vocabSize
        let fp32 = InferenceEngine(model: served.model, slots: 1, capacity: 128, format: .fp32)
        let other = InferenceEngine(model: served.model, slots: 1, capacity: 128, format: format, kvCache: kvCache)
        let promptLength = 4
        var (worst, worstRange, positions): (Float, Float, Int) = (0, 0, 0)
        for text in Self.texts {
            let ids = try served.encode(text)
            XCTAssertGreaterThan(ids.count, promptLength + 8, "too few tokens in \(text.debugDescription)")
            fp32.prefill(slot: 0, tokens: Array(ids.prefix(promptLength)))
            other.prefill(slot: 0, tokens: Array(ids.prefix(promptLength)))
            for p in promptLength..<ids.count {
                let a = fp32.decode(tokens: [ids[p]], slots: [0], positions: [Int32(p)])
                let b = other.decode(tokens: [ids[p]], slots: [0], positions: [Int32(p)])
                var (lo, hi) = (Float.infinity, -Float.infinity)
                for j in 0..<vocab {
                    worst = max(worst, abs(a[j] - b[j]))
                    (lo, hi) = (min(lo, a[j]), max(hi, a[j]))
                }
                worstRange = max(worstRange, hi - lo)
                positions += 1
            }
        }
        print(
            "\(format) weights, \(kvCache) cache vs fp32 decoding over \(positions) positions: max |Δlogit| \(worst) (fp32 logit range up to \(worstRange))"
        )
        return (worst, worstRange, positions)
    }

    /// int8 logits stay within the bound of fp32's, and differ from them (the weights were quantized).
    func testInt8DecodingLogitsStayWithinBoundOfFP32() throws {
        let (worst, _, positions) = try compareWithFP32(.int8)
        XCTAssertGreaterThan(worst, 0, "int8 decoding should not be bit-identical to fp32: were the weights quantized?")
        XCTAssertLessThan(worst, 2.5, "int8 vs fp32 decoding: max |Δlogit| \(worst) over \(positions) positions")
    }

    /// bf16 logits (on CPUs with AVX512_BF16) stay within the same bound.
    func testBF16DecodingLogitsStayWithinBoundOfFP32() throws {
        XCTAssertEqual(WeightFormat.bf16.isSupported, BF16MatrixTests.cpuInfoListsBF16())
        // Without the units bf16 weights are refused (kumo generate says so: GenerateCLI tests).
        guard WeightFormat.bf16.isSupported else { return }
        let (worst, _, positions) = try compareWithFP32(.bf16)
        XCTAssertGreaterThan(worst, 0, "bf16 decoding should not be bit-identical to fp32")
        XCTAssertLessThan(worst, 2.5, "bf16 vs fp32 decoding: max |Δlogit| \(worst) over \(positions) positions")
    }

    /// A bf16 key/value cache (rounded keys and values, fp32 weights) stays within a bound of the fp32 cache.
    func testBF16CacheLogitsStayWithinBoundOfFP32() throws {
        let (worst, _, positions) = try compareWithFP32(.fp32, kvCache: .bf16)
        XCTAssertGreaterThan(worst, 0, "a bf16 cache should not be bit-identical to fp32: were keys rounded?")
        XCTAssertLessThan(worst, 0.6, "bf16 cache vs fp32: max |Δlogit| \(worst) over \(positions) positions")
    }
}
