import Foundation
import KumoData

extension Evaluator {
    /// Preference accuracy on `options.corpus` (JSONL records {prompt, chosen_response,
    /// rejected_response}; other lines are left out and counted in `records_left_out`): the prompt
    /// templated with `options.chatTemplate`, each response
    /// scored by its summed log-probability with the tokenizer's EOS after it. With
    /// `referenceScorer`, also the implicit-reward accuracy and the mean sigmoid DPO loss at
    /// `options.beta`.
    func runPreference() throws -> TaskResult {
        guard let corpus = options.corpus else {
            throw EvalDataError(
                "--corpus", "the preference task needs --corpus FILE.jsonl (prompt, chosen_response, rejected_response)"
            )
        }
        let read: (records: [PreferenceRecord], summary: CorpusSummary)
        do {
            read = try PreferenceRecord.read(paths: [corpus])
        } catch let error as CorpusError {
            throw EvalDataError(corpus, error.description)
        }
        let records = limited(read.records)
        guard !records.isEmpty else { throw EvalDataError(corpus, "no preference records") }
        var hits: [Double] = []
        var rewardHits: [Double] = []
        var losses: [Double] = []
        for (i, record) in records.enumerated() {
            let prompt = options.chatTemplate.prompt(instruction: record.prompt)
            let pair = [record.chosen, record.rejected].map {
                PromptResponseTokens(prompt: prompt, response: $0, tokenizer: tokenizer)
            }
            let logps = score(scorer, pair)
            hits.append(logps[0] > logps[1] ? 1 : 0)
            if let referenceScorer {
                let reference = score(referenceScorer, pair)
                let z = options.beta * ((logps[0] - reference[0]) - (logps[1] - reference[1]))
                rewardHits.append(z > 0 ? 1 : 0)
                losses.append(max(-z, 0) + log1p(exp(-abs(z))))  // −log σ(z)
            }
            promptSink?([
                "prompt": prompt, "chosen": record.chosen, "rejected": record.rejected, "chosen_logp": logps[0],
                "rejected_logp": logps[1],
            ])
            progress(i + 1, records.count)
        }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(1, v.count)) }
        var metrics = [
            "accuracy": mean(hits), "accuracy_stderr": Metrics.meanStderr(hits),
            "eos_id": Double(tokenizer.eos ?? tokenizer.eod),
            // Records lacking a prompt, chosen_response or rejected_response: not evaluated.
            "records_left_out": Double(read.summary.skippedTotal - read.summary.skipped[.blankLine, default: 0]),
        ]
        var headline = ["accuracy"]
        if referenceScorer != nil {
            metrics["reward_accuracy"] = mean(rewardHits)
            metrics["reward_accuracy_stderr"] = Metrics.meanStderr(rewardHits)
            metrics["dpo_loss"] = mean(losses)
            metrics["dpo_loss_stderr"] = Metrics.meanStderr(losses)
            headline += ["reward_accuracy", "dpo_loss"]
        }
        return TaskResult(
            task: .preference, metrics: metrics, headline: headline, examples: records.count, files: [corpus])
    }

    /// The summed log-probabilities of both responses of `pair` after their shared prompt; a
    /// response longer than the model's positions keeps its first tokens.
    private func score(_ scorer: LogLikelihoodScorer, _ pair: [PromptResponseTokens]) -> [Double] {
        let longest = scorer.model.config.maxPositionEmbeddings - 1
        return scorer.logLikelihoods(
            context: pair[0].prompt, continuations: pair.map { Array($0.response.prefix(longest)) })
    }
}
