import Foundation
import KumoData
import KumoInterop
import KumoModel
import XCTest

@testable import KumoEval

/// `sft_loss`: the response loss of SFT records scored from the cache equals the masked
/// cross-entropy of a full forward pass over the rows training reads.
final class SFTLossTests: XCTestCase {
    private let records = [
        SFTRecord(instruction: "Add", input: "1 2", output: "3"),
        SFTRecord(instruction: "Greet the reader", output: "Hello there"),
        SFTRecord(instruction: "日本の首都は？", output: "東京です。"),
    ]

    private func corpus() throws -> String {
        let file = NSTemporaryDirectory() + "kumo-sft-loss-\(UUID().uuidString).jsonl"
        let lines = try records.map { r in
            String(
                decoding: try JSONSerialization.data(
                    withJSONObject: ["instruction": r.instruction, "input": r.input, "output": r.output]),
                as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Summed masked cross-entropy and scored targets of `source`'s first `rows` rows, one forward pass each.
    private func trainingLoss(_ model: LlamaModel, _ source: SFTSource, rows: Int) throws -> (Double, Int) {
        let n = source.seqLength
        var total = 0.0
        var count = 0
        for sample in 0..<rows {
            var inputs = [Int32](repeating: 0, count: n)
            var targets = inputs
            var positions = inputs
            try inputs.withUnsafeMutableBufferPointer { i in
                try targets.withUnsafeMutableBufferPointer { t in
                    try positions.withUnsafeMutableBufferPointer { p in
                        try source.fill(
                            sample: sample, into: SequenceRows(rows: 1, seqLen: n, inputs: i, targets: t, positions: p))
                    }
                }
            }
            let logits = inputs.withUnsafeBufferPointer { model.forward(tokens: $0.baseAddress!, batch: 1, seqLen: n) }
            for t in 0..<n where targets[t] != -100 {
                let row = logits + t * model.config.vocabSize
                total +=
                    LogLikelihoodScorer.logSumExp(row, count: model.config.vocabSize) - Double(row[Int(targets[t])])
                count += 1
            }
        }
        return (total, count)
    }

    func testSFTLossEqualsTheTrainingLossOfTheResponseTokens() throws {
        let file = try corpus()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let config = ModelConfig(
            vocabSize: 260, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 512)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 4, std: 0.3)
        let tokenizer = ByteTokenizer()
        var options = EvalOptions()
        options.corpus = file
        options.chatTemplate = .llmJP
        let evaluator = Evaluator(scorer: LogLikelihoodScorer(model: model), tokenizer: tokenizer, options: options)
        var dumped: [[String: String]] = []
        evaluator.promptSink = { dumped.append($0 as! [String: String]) }
        let result = try evaluator.run(.sftLoss)

        let source = SFTSource(
            examples: records.map { $0.tokens(.llmJP, tokenizer: tokenizer) }, seqLength: 511, vocabSize: 260,
            pad: tokenizer.eod, packing: false, truncate: true, seed: 1, numSamples: 0)
        XCTAssertEqual(source.stats.kept, 3)
        let (total, count) = try trainingLoss(model, source, rows: 3)
        XCTAssertEqual(result.metrics["tokens"], Double(count))
        XCTAssertEqual(count, records.reduce(0) { $0 + $1.output.utf8.count + 1 }, "response bytes and one EOS each")
        XCTAssertEqual(result.metrics["eos_id"], 256)
        let loss = try XCTUnwrap(result.metrics["loss"])
        XCTAssertEqual(loss, total / Double(count), accuracy: 1e-4 * loss)
        XCTAssertEqual(
            dumped,
            records.map {
                [
                    "prompt": InstructionTemplate.llmJP.prompt(instruction: $0.instruction, input: $0.input),
                    "response": $0.output,
                ]
            })

        options.limit = 1
        let first = try Evaluator(scorer: LogLikelihoodScorer(model: model), tokenizer: tokenizer, options: options)
            .run(.sftLoss)
        XCTAssertEqual(first.metrics["tokens"], 2)
        XCTAssertEqual(first.examples, 1)
    }

    func testSFTLossWithoutCorpusNamesTheOption() throws {
        let model = try LlamaModel(
            config: ModelConfig(
                vocabSize: 260, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 1, numAttentionHeads: 4,
                numKeyValueHeads: 2, maxPositionEmbeddings: 32))
        let evaluator = Evaluator(
            scorer: LogLikelihoodScorer(model: model), tokenizer: ByteTokenizer(), options: EvalOptions())
        XCTAssertThrowsError(try evaluator.run(.sftLoss)) { XCTAssertTrue("\($0)".contains("--corpus"), "\($0)") }
    }
}
