import Foundation
import KumoData
import KumoInterop
import XCTest

@testable import KumoEval

/// Kumo's response log-likelihoods for SmolLM2-135M-Instruct against transformers' in fp32: the
/// prompts of SFT examples and preference pairs rendered with the ChatML instruction template,
/// prompt and response tokenized separately, EOS after the response
/// (scripts/golden/make_smollm2_responses.py wrote the golden files).
final class ResponseAgreementTests: XCTestCase {
    struct Golden: Decodable {
        struct Summary: Decodable {
            var n: Int
            var eosId: Int32
            var loss: Double?
            var tokens: Int?
            var accuracy: Double?
            enum CodingKeys: String, CodingKey {
                case n, loss, tokens, accuracy
                case eosId = "eos_id"
            }
        }
        struct Example: Decodable {
            var instruction: String
            var input: String?
            var prompt: String
            var response, chosen, rejected: String?
            var logp, chosenLogp, rejectedLogp: Double?
            enum CodingKeys: String, CodingKey {
                case instruction, input, prompt, response, chosen, rejected, logp
                case chosenLogp = "chosen_logp"
                case rejectedLogp = "rejected_logp"
            }
        }
        var summary: Summary
        var examples: [Example]
    }

    static func golden(_ name: String) throws -> Golden {
        try JSONDecoder().decode(
            Golden.self, from: Data(contentsOf: AgreementTests.golden.appendingPathComponent(name + ".json")))
    }

    /// The summed log-likelihood of `response` after `prompt`, and its token count (EOS included).
    static func score(_ scorer: LogLikelihoodScorer, _ tokenizer: any Tokenizer, _ prompt: String, _ response: String)
        -> (logp: Double, tokens: Int)
    {
        let tokens = PromptResponseTokens(prompt: prompt, response: response, tokenizer: tokenizer)
        return (
            scorer.logLikelihoods(context: tokens.prompt, continuations: [tokens.response])[0], tokens.response.count
        )
    }

    func testSFTResponseLogLikelihoodsMatchTransformers() throws {
        let golden = try Self.golden("smollm2_sft")
        let tokenizer = try loadTokenizer(model: AgreementTests.gguf)
        let scorer = LogLikelihoodScorer(model: try loadModel(path: AgreementTests.gguf))
        XCTAssertEqual(tokenizer.eos, golden.summary.eosId)
        var (nll, count) = (0.0, 0)
        for e in golden.examples {
            XCTAssertEqual(
                InstructionTemplate.chatML.prompt(instruction: e.instruction, input: e.input ?? ""), e.prompt)
            let (logp, tokens) = Self.score(scorer, tokenizer, e.prompt, try XCTUnwrap(e.response))
            XCTAssertEqual(logp, try XCTUnwrap(e.logp), accuracy: 1e-3, e.instruction)
            nll -= logp
            count += tokens
        }
        XCTAssertEqual(nll / Double(count), try XCTUnwrap(golden.summary.loss), accuracy: 1e-5)
    }

    func testPreferenceLogLikelihoodsMatchTransformers() throws {
        let golden = try Self.golden("smollm2_pref")
        let tokenizer = try loadTokenizer(model: AgreementTests.gguf)
        let scorer = LogLikelihoodScorer(model: try loadModel(path: AgreementTests.gguf))
        var wins = 0
        for e in golden.examples {
            XCTAssertEqual(InstructionTemplate.chatML.prompt(instruction: e.instruction), e.prompt)
            let chosen = Self.score(scorer, tokenizer, e.prompt, try XCTUnwrap(e.chosen)).logp
            let rejected = Self.score(scorer, tokenizer, e.prompt, try XCTUnwrap(e.rejected)).logp
            XCTAssertEqual(chosen, try XCTUnwrap(e.chosenLogp), accuracy: 1e-3)
            XCTAssertEqual(rejected, try XCTUnwrap(e.rejectedLogp), accuracy: 1e-3)
            wins += chosen > rejected ? 1 : 0
        }
        XCTAssertEqual(Double(wins) / Double(golden.summary.n), try XCTUnwrap(golden.summary.accuracy))
    }

    /// `kumo eval`'s sft_loss and preference tasks over the golden records (written back as SFT and
    /// preference JSON lines) give transformers' loss, token count, EOS and accuracy.
    func testSFTLossAndPreferenceTasksMatchTransformers() throws {
        let dir = NSTemporaryDirectory() + "kumo-response-tasks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sft = try Self.golden("smollm2_sft")
        let pref = try Self.golden("smollm2_pref")
        func write(_ name: String, _ records: [[String: String]]) throws -> String {
            let lines = try records.map {
                String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: dir + name, atomically: true, encoding: .utf8)
            return dir + name
        }
        let sftCorpus = try write(
            "/sft.jsonl",
            sft.examples.map { ["instruction": $0.instruction, "input": $0.input ?? "", "output": $0.response ?? ""] })
        let prefCorpus = try write(
            "/pref.jsonl",
            pref.examples.map {
                ["prompt": $0.instruction, "chosen_response": $0.chosen ?? "", "rejected_response": $0.rejected ?? ""]
            })
        let model = try loadModel(path: AgreementTests.gguf)
        let tokenizer = try loadTokenizer(model: AgreementTests.gguf)
        func run(_ task: EvalTask, _ corpus: String) throws -> TaskResult {
            var options = EvalOptions()
            options.corpus = corpus
            options.chatTemplate = .chatML
            return try Evaluator(scorer: LogLikelihoodScorer(model: model), tokenizer: tokenizer, options: options)
                .run(task)
        }
        let loss = try run(.sftLoss, sftCorpus)
        XCTAssertEqual(try XCTUnwrap(loss.metrics["loss"]), try XCTUnwrap(sft.summary.loss), accuracy: 1e-4)
        XCTAssertEqual(loss.metrics["tokens"], Double(try XCTUnwrap(sft.summary.tokens)))
        XCTAssertEqual(loss.metrics["eos_id"], Double(sft.summary.eosId))
        let preference = try run(.preference, prefCorpus)
        XCTAssertEqual(preference.metrics["accuracy"], pref.summary.accuracy)
        XCTAssertEqual(preference.metrics["eos_id"], Double(pref.summary.eosId))
    }
}
