import Foundation
import XCTest

/// `[eval]`: `kumo train` evaluates the model it trains and logs the scores.
final class TrainEvalCLITests: XCTestCase {
    private static let question = #"""
        {"q_id": %d, "question": "雨の日に使うものは？", "choice0": "傘", "choice1": "靴", "choice2": "本", "choice3": "皿", "choice4": "鍵", "label": %d}
        """#

    func testTrainLogsPerplexityAndJCommonsenseQAScoresEveryInterval() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let corpus = dir + "/corpus.jsonl"
        let lines = (0..<40).map { #"{"text": "京都は日本の古い都です。雨の日には傘を使います。Kyoto is an old capital \#($0)."}"# }
        try lines.joined(separator: "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        let jcqa = dir + "/jglue/jcommonsenseqa-v1.3"
        try FileManager.default.createDirectory(atPath: jcqa, withIntermediateDirectories: true)
        let questions = (0..<3).map { String(format: Self.question, $0, $0 % 5) }
        try questions.joined(separator: "\n").write(
            toFile: jcqa + "/valid-v1.3.json", atomically: true, encoding: .utf8)
        let tokenizer = KumoProcess.sharedData.appendingPathComponent(
            "tokenizers/llm-jp/cc100_ja30K_en20K.symbolRemoved.vocab.reestimated.model"
        ).path
        let run = dir + "/run"
        let r = try KumoProcess.run([
            "train", "--run-dir", run, "--set", "model.vocab_size=44032", "--set", "model.hidden_size=64",
            "--set", "model.intermediate_size=128", "--set", "model.num_hidden_layers=2",
            "--set", "model.num_attention_heads=4", "--set", "model.num_key_value_heads=2",
            "--set", "model.max_position_embeddings=64", "--set", "data.path=[\"\(corpus)\"]",
            "--set", "data.tokenizer=\(tokenizer)", "--set", "train.seq_length=32", "--set", "train.micro_batch_size=2",
            "--set", "train.steps=4", "--set", "train.threads=1", "--set", "eval.interval=2",
            "--set", "eval.tasks=[\"perplexity\", \"jcommonsenseqa\"]", "--set", "eval.corpus=\(corpus)",
            "--set", "eval.data_dir=\(dir)/jglue", "--set", "eval.limit=5",
        ])
        XCTAssertEqual(r.status, 0, r.err)
        let objects = try metricsLines(run)
        let evals = objects.filter { $0["eval.perplexity.perplexity"] != nil }
        XCTAssertEqual(evals.map { $0["step"] as? Int }, [2, 4], "\(objects)")
        for line in evals {
            let ppl = try XCTUnwrap(line["eval.perplexity.perplexity"] as? Double)
            // An untrained model over 44,032 ids: far from 1, not beyond the vocabulary's size by much.
            XCTAssertTrue(ppl > 100 && ppl < 200_000, "perplexity \(ppl)")
            let acc = try XCTUnwrap(line["eval.jcommonsenseqa.acc"] as? Double)
            XCTAssertTrue([0, 1.0 / 3, 2.0 / 3, 1].contains { abs($0 - acc) < 1e-9 }, "acc \(acc) of 3 questions")
            XCTAssertNotNil(line["eval.jcommonsenseqa.acc_norm"])
            XCTAssertNotNil(line["eval_s"])
        }
        // A later evaluation sees a model trained for longer: its perplexity differs.
        XCTAssertNotEqual(
            evals[0]["eval.perplexity.perplexity"] as? Double, evals[1]["eval.perplexity.perplexity"] as? Double)
        let log = try String(contentsOfFile: run + "/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("step 2 eval:") && log.contains("eval.jcommonsenseqa.acc"), log)
        // The run's final weights, read back by `kumo eval`, score the corpus as the last evaluation did.
        let report = dir + "/eval.json"
        let e = try KumoProcess.run([
            "eval", "--model", run + "/model.safetensors", "--tokenizer", tokenizer, "--tasks", "perplexity",
            "--corpus", corpus, "--context-length", "32", "--stride", "16", "--limit", "5", "--output", report,
        ])
        XCTAssertEqual(e.status, 0, e.err)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report)))
        let results = (object as? [String: Any])?["results"] as? [String: [String: Double]]
        let reread = try XCTUnwrap(results?["perplexity"]?["perplexity"], "\(String(describing: object))")
        let last = try XCTUnwrap(evals.last?["eval.perplexity.perplexity"] as? Double)
        XCTAssertEqual(
            reread, last, accuracy: 1e-6 * last, "perplexity of the saved weights \(reread), in training \(last)")
    }

    func testUnknownEvalTaskIsRefusedNamingTheValidOnes() throws {
        let r = try KumoProcess.run([
            "train", "--run-dir", try KumoProcess.temporaryDirectory(for: self), "--set", "model.preset=tiny",
            "--set", "data.synthetic=true", "--set", "train.seq_length=32", "--set", "eval.interval=1",
            "--set", "eval.tasks=[\"jcqa\"]", "--set", "eval.tokenizer=byte",
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("eval.tasks") && r.err.contains("jcommonsenseqa, jnli"), r.err)
    }

    /// Rank 0 evaluates the whole model gathered from every rank's part (`layout` on `ranks`
    /// ranks): the perplexity after each interval is the one-rank run's within 1e-5 relative.
    private func assertEvaluationMatchesOneRank(ranks: Int, _ layout: [String], _ label: String) throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let corpus = dir + "/corpus.jsonl"
        let lines = (0..<8).map { #"{"text": "Kyoto is an old capital of Japan, number \#($0). 京都は古い都です。"}"# }
        try lines.joined(separator: "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        func perplexities(ranks: Int, _ layout: [String]) throws -> [Double] {
            let run = dir + "/run-\(ranks)"
            let args =
                ["train", "--run-dir", run] + TinyRun.args(micro: 2, steps: 4)
                + (["eval.interval=2", "eval.tasks=[\"perplexity\"]", "eval.tokenizer=byte", "eval.corpus=\(corpus)"]
                + layout).flatMap { ["--set", $0] }
            let r = ranks == 1 ? try KumoProcess.run(args) : try KumoProcess.runMPI(ranks: ranks, args)
            XCTAssertEqual(r.status, 0, r.err)
            let objects = try metricsLines(run)
            let evals = objects.filter { $0["eval.perplexity.perplexity"] != nil }
            XCTAssertEqual(evals.map { $0["step"] as? Int }, [2, 4], "\(objects)")
            return evals.compactMap { $0["eval.perplexity.perplexity"] as? Double }
        }
        let one = try perplexities(ranks: 1, [])
        let split = try perplexities(ranks: ranks, layout)
        XCTAssertEqual(split.count, 2)
        let error = zip(split, one).map { abs($0 - $1) / $1 }.max() ?? .infinity
        print("\(label) evaluation vs one rank: perplexities \(split) vs \(one), max relative error \(error)")
        XCTAssertLessThanOrEqual(error, 1e-5, label)
    }

    func testEvaluationOfTensorTimesPipelineShardsMatchesOneRank() throws {
        try assertEvaluationMatchesOneRank(ranks: 4, ["parallel.tensor=2", "parallel.pipeline=2"], "tp=2 × pp=2")
    }

    /// Each rank sends its ZeRO-3 partition; with hybrid sharding, one shard group's.
    func testEvaluationOfZeRO3PartitionsMatchesOneRank() throws {
        try assertEvaluationMatchesOneRank(ranks: 2, ["parallel.zero_stage=3"], "dp=2 ZeRO-3")
        try assertEvaluationMatchesOneRank(
            ranks: 4, ["parallel.zero_stage=3", "parallel.shard_group_size=2"], "dp=4 ZeRO-3 in groups of 2")
    }
}
