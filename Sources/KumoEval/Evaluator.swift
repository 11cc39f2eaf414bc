import Foundation
import KumoData

/// Runs evaluation tasks with one model and tokenizer.
public final class Evaluator {
    let scorer: LogLikelihoodScorer
    let tokenizer: any Tokenizer
    let options: EvalOptions
    /// Called after each example with (done, total).
    public var progress: (Int, Int) -> Void = { _, _ in }
    /// Receives every prompt as a JSON object (`--dump-prompts`), with Kumo's scores.
    public var promptSink: (([String: Any]) -> Void)?
    /// The reference model's scorer (`--ref-model`) of the preference task's rewards.
    public var referenceScorer: LogLikelihoodScorer?

    /// An evaluator of `scorer`'s model, reading text through `tokenizer`.
    public init(scorer: LogLikelihoodScorer, tokenizer: any Tokenizer, options: EvalOptions) {
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.options = options
    }

    private func path(_ task: EvalTask, _ split: String) -> String { options.file(task, split) }

    func limited<T>(_ items: [T]) -> [T] { options.limit.map { Array(items.prefix($0)) } ?? items }

    /// Runs `task` and times it.
    public func run(_ task: EvalTask) throws -> TaskResult {
        let start = Date()
        var result: TaskResult
        switch task {
        case .jcommonsenseqa, .jnli, .jsts: result = try runChoices(task)
        case .jsquad: result = try runQA()
        case .perplexity: result = try runPerplexity()
        case .sftLoss: result = try runSFTLoss()
        case .preference: result = try runPreference()
        }
        result.seconds = Date().timeIntervalSince(start)
        return result
    }

    private func readChoices(_ task: EvalTask, _ file: String) throws -> [ChoiceExample] {
        switch task {
        case .jnli: return try JGLUE.nli(file)
        case .jsts: return try JGLUE.sts(file)
        default: return try JGLUE.commonsenseQA(file)
        }
    }

    /// The examples to evaluate and the few-shot prefix, and the files read.
    private func prepare<T>(_ task: EvalTask, read: (String) throws -> [T], answer: (T) -> (String, String)) throws -> (
        [T], String, [String]
    ) {
        let validation = path(task, "valid")
        let train = path(task, "train")
        let hasTrain = options.numFewshot > 0 && FileManager.default.fileExists(atPath: train)
        let (shots, rest) = FewShot.split(
            validation: try read(validation), train: hasTrain ? try read(train) : nil, k: options.numFewshot,
            seed: options.seed)
        return (limited(rest), FewShot.prefix(shots.map(answer)), hasTrain ? [validation, train] : [validation])
    }

    private func runChoices(_ task: EvalTask) throws -> TaskResult {
        let (examples, prefix, files) = try prepare(
            task, read: { try readChoices(task, $0) }, answer: { ($0.context, $0.choices[$0.label]) })
        var predictions: [Int] = []
        var normalized: [Int] = []
        var expected: [Double] = []
        for (i, example) in examples.enumerated() {
            let context = prefix + example.context
            let contextTokens = tokenizer.encode(context)
            let lls = scorer.logLikelihoods(
                context: contextTokens, continuations: example.choices.map { tokenizer.encode($0) })
            predictions.append(Metrics.argmax(lls))
            normalized.append(Metrics.normalizedChoice(logLikelihoods: lls, choices: example.choices))
            let peak = lls.max()!
            let weights = lls.map { exp($0 - peak) }
            expected.append(zip(weights, weights.indices).map { $0 * Double($1) }.reduce(0, +) / weights.reduce(0, +))
            promptSink?([
                "task": task.rawValue, "context": context, "choices": example.choices, "label": example.label,
                "kumo_loglikelihoods": lls,
            ])
            progress(i + 1, examples.count)
        }
        let labels = examples.map(\.label)
        func hits(_ p: [Int]) -> [Double] { zip(p, labels).map { $0 == $1 ? 1 : 0 } }
        var metrics: [String: Double] = [
            "acc": Metrics.accuracy(predictions, labels), "acc_stderr": Metrics.meanStderr(hits(predictions)),
        ]
        var headline = ["acc"]
        switch task {
        case .jcommonsenseqa:
            metrics["acc_norm"] = Metrics.accuracy(normalized, labels)
            metrics["acc_norm_stderr"] = Metrics.meanStderr(hits(normalized))
            headline.append("acc_norm")
        case .jnli:
            metrics["macro_f1"] = Metrics.macroF1(predictions, labels, classes: 3)
            metrics["macro_f1_stderr"] = Metrics.bootstrapStderr(count: labels.count) { s in
                Metrics.macroF1(s.map { predictions[$0] }, s.map { labels[$0] }, classes: 3)
            }
            let counts = (0..<3).map { c in labels.filter { $0 == c }.count }
            metrics["majority_baseline_acc"] = Double(counts.max()!) / Double(labels.count)
            headline += ["macro_f1", "majority_baseline_acc"]
        default:
            let gold = examples.map(\.score)
            metrics = [
                "pearson": Metrics.pearson(expected, gold), "spearman": Metrics.spearman(expected, gold),
                "pearson_stderr": Metrics.bootstrapStderr(count: gold.count) { s in
                    Metrics.pearson(s.map { expected[$0] }, s.map { gold[$0] })
                },
                "spearman_stderr": Metrics.bootstrapStderr(count: gold.count) { s in
                    Metrics.spearman(s.map { expected[$0] }, s.map { gold[$0] })
                },
            ]
            headline = ["pearson", "spearman"]
        }
        return TaskResult(task: task, metrics: metrics, headline: headline, examples: examples.count, files: files)
    }

    private func runQA() throws -> TaskResult {
        let (examples, prefix, files) = try prepare(.jsquad, read: JGLUE.squad) { ($0.context, $0.answers.first ?? "") }
        var em: [Double] = []
        var f1: [Double] = []
        for (i, example) in examples.enumerated() {
            let context = prefix + example.context
            let generated = scorer.greedy(prompt: tokenizer.encode(context), maxTokens: options.maxNewTokens) {
                self.tokenizer.decode($0).contains("\n")
            }
            let text = tokenizer.decode(generated).split(separator: "\n", omittingEmptySubsequences: false)[0]
            let answer = text.trimmingCharacters(in: .whitespaces)
            em.append(SQuADMetrics.exactMatch(prediction: answer, answers: example.answers))
            f1.append(SQuADMetrics.charF1(prediction: answer, answers: example.answers))
            promptSink?(["task": "jsquad", "context": context, "answers": example.answers, "kumo_prediction": answer])
            progress(i + 1, examples.count)
        }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(1, v.count)) }
        return TaskResult(
            task: .jsquad,
            metrics: [
                "exact_match": mean(em), "exact_match_stderr": Metrics.meanStderr(em), "char_f1": mean(f1),
                "char_f1_stderr": Metrics.meanStderr(f1),
            ], headline: ["exact_match", "char_f1"], examples: examples.count, files: files)
    }
}
