import XCTest

@testable import KumoInference

/// Top-k/top-p masks, the repetition penalty and seeded determinism of `Sampler`.
final class SamplerTests: XCTestCase {
    private let logits: [Float] = [1.0, 3.0, 2.0, 0.5, 2.5]

    func testTopKKeepsTheKMostLikelyTokens() {
        let c = Sampler.candidates(logits, temperature: 1, topK: 2, topP: 1)
        XCTAssertEqual(c.map(\.id), [1, 4])
        XCTAssertEqual(c.map(\.probability).reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertEqual(c[0].probability, 1 / (1 + exp(-0.5)), accuracy: 1e-9)
    }

    func testTopPKeepsTheSmallestPrefixReachingP() {
        // softmax of [3, 2.5, 2, 1, 0.5]: 0.419, 0.254, 0.154, 0.057, 0.034 (sorted).
        let all = Sampler.candidates(logits, temperature: 1, topK: 0, topP: 1)
        XCTAssertEqual(all.map(\.id), [1, 4, 2, 0, 3])
        let nucleus = Sampler.candidates(logits, temperature: 1, topK: 0, topP: 0.6)
        XCTAssertEqual(nucleus.map(\.id), [1, 4], "0.419 < 0.6 ≤ 0.419 + 0.254")
        let wider = Sampler.candidates(logits, temperature: 1, topK: 0, topP: 0.8)
        XCTAssertEqual(wider.map(\.id), [1, 4, 2])
    }

    func testLowTemperatureSharpensTheDistribution() {
        let cold = Sampler.candidates(logits, temperature: 0.1, topK: 0, topP: 1)
        XCTAssertGreaterThan(cold[0].probability, 0.99)
    }

    func testRepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        var l: [Float] = [2, -2, 4]
        Sampler.applyRepetitionPenalty(&l, history: [0, 1, 1], penalty: 2)
        XCTAssertEqual(l, [1, -4, 4])
        var sampler = Sampler(SamplingParameters(repetitionPenalty: 10))
        let picked = [Float](arrayLiteral: 5, 4.9).withUnsafeBufferPointer {
            sampler.next(logits: $0.baseAddress!, vocab: 2, history: [0])
        }
        XCTAssertEqual(picked, 1, "the repeated token's logit 5 becomes 0.5")
    }

    func testGreedyPicksTheArgmax() {
        var sampler = Sampler(SamplingParameters())
        XCTAssertEqual(
            logits.withUnsafeBufferPointer { sampler.next(logits: $0.baseAddress!, vocab: 5, history: []) }, 1)
    }

    func testSameSeedGivesTheSameTokensAndAnotherSeedDiffers() {
        func draws(_ seed: UInt64) -> [Int32] {
            var sampler = Sampler(SamplingParameters(temperature: 1, seed: seed))
            return (0..<64).map { _ in
                logits.withUnsafeBufferPointer { sampler.next(logits: $0.baseAddress!, vocab: 5, history: []) }
            }
        }
        XCTAssertEqual(draws(42), draws(42))
        XCTAssertNotEqual(draws(42), draws(43))
        XCTAssertEqual(Set(draws(42)).count, 5, "temperature 1 reaches every token in 64 draws")
    }

    func testTopKOneIsGreedyWhateverTheSeed() {
        for seed in 0..<8 as Range<UInt64> {
            var sampler = Sampler(SamplingParameters(temperature: 1.5, topK: 1, seed: seed))
            XCTAssertEqual(
                logits.withUnsafeBufferPointer { sampler.next(logits: $0.baseAddress!, vocab: 5, history: []) }, 1)
        }
    }
}
