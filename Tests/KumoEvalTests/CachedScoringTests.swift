import Foundation
import KumoInterop
import KumoModel
import XCTest

@testable import KumoEval

/// Scoring from a shared key/value cache must give the log-likelihoods of full forward passes.
final class CachedScoringTests: XCTestCase {
    /// Σ log p(continuation | context) from one full forward pass of the training model over both.
    private func fullForward(_ model: LlamaModel, context: [Int32], continuation: [Int32]) -> Double {
        let all = context + continuation
        let logits = all.withUnsafeBufferPointer { model.forward(tokens: $0.baseAddress!, batch: 1, seqLen: all.count) }
        let vocab = model.config.vocabSize
        return (context.count..<all.count).reduce(0.0) { sum, p in
            let row = logits + (p - 1) * vocab
            return sum + Double(row[Int(all[p])]) - LogLikelihoodScorer.logSumExp(row, count: vocab)
        }
    }

    func testCachedChoiceScoresEqualFullForwardOnSmolLM2() throws {
        let gguf = AgreementTests.gguf
        let model = try loadModel(path: gguf)
        let tokenizer = try loadTokenizer(model: gguf)
        let questions = try JGLUE.commonsenseQA(AgreementTests.jglue + "/jcommonsenseqa-v1.3/valid-v1.3.json")
        let scorer = LogLikelihoodScorer(model: model)
        var worst = 0.0
        for question in questions.prefix(4) {
            let context = tokenizer.encode(question.context)
            let choices = question.choices.map { tokenizer.encode($0) }
            let cached = scorer.logLikelihoods(context: context, continuations: choices)
            for (choice, ll) in zip(choices, cached) {
                worst = max(worst, abs(ll - fullForward(model, context: context, continuation: choice)))
            }
        }
        XCTAssertLessThan(worst, 1e-4, "largest |cached − full forward| log-likelihood \(worst)")
    }

    func testGreedyFromCacheEqualsArgmaxOfFullForward() throws {
        let config = ModelConfig(
            vocabSize: 61, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 24)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 3, std: 0.5)
        // 20 prompt tokens and 8 answer tokens exceed 24 positions: the prompt loses its oldest 4.
        let prompt: [Int32] = (0..<20).map { Int32($0 * 7 % 61) }
        let generated = LogLikelihoodScorer(model: model).greedy(prompt: prompt, maxTokens: 8) { _ in false }
        var expected: [Int32] = []
        for _ in 0..<8 {
            let window = Array(prompt.suffix(16)) + expected
            let logits = window.withUnsafeBufferPointer {
                model.forward(tokens: $0.baseAddress!, batch: 1, seqLen: window.count)
            }
            let last = logits + (window.count - 1) * config.vocabSize
            expected.append(Int32((0..<config.vocabSize).max { last[$0] < last[$1] }!))
        }
        XCTAssertEqual(generated, expected)
    }
}
