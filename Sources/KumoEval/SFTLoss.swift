import Foundation
import KumoData

extension Evaluator {
    /// The response loss of the model on the SFT records of `options.corpus` ({instruction, input,
    /// output} JSON lines), as `train.objective = "sft"` trains it: each prompt templated with
    /// `options.chatTemplate`, prompt and response tokenized separately, the tokenizer's EOS after
    /// the response. `loss` is the summed negative log-likelihood of the response tokens (EOS
    /// included) over all examples divided by their number, `tokens`. An example whose response
    /// does not fit the model's positions is left out and counted in `skipped`.
    func runSFTLoss() throws -> TaskResult {
        guard let corpus = options.corpus else {
            throw EvalDataError(
                "--corpus", "the sft_loss task needs --corpus FILE.jsonl of {instruction, input, output}")
        }
        let all: [SFTRecord]
        let read: CorpusSummary
        do {
            (all, read) = try SFTRecord.read(paths: [corpus])
        } catch let error as CorpusError {
            throw EvalDataError(corpus, error.description)
        }
        let records = limited(all)
        guard !records.isEmpty else {
            throw EvalDataError(corpus, "no SFT records {instruction, input, output} (\(read))")
        }
        let eos = tokenizer.eos ?? tokenizer.eod
        let limit = scorer.model.config.maxPositionEmbeddings
        var nll = 0.0
        var tokens = 0
        var skipped = 0
        for (i, record) in records.enumerated() {
            let prompt = record.prompt(options.chatTemplate)
            promptSink?(["prompt": prompt, "response": record.output])
            let example = PromptResponseTokens(prompt: prompt, response: record.output, tokenizer: tokenizer)
            if example.prompt.isEmpty || example.response.count >= limit {
                skipped += 1
            } else {
                nll -= scorer.logLikelihoods(context: example.prompt, continuations: [example.response])[0]
                tokens += example.response.count
            }
            progress(i + 1, records.count)
        }
        guard tokens > 0 else {
            throw EvalDataError(corpus, "no example has a prompt and a response that fit \(limit) positions")
        }
        return TaskResult(
            task: .sftLoss,
            metrics: [
                "loss": nll / Double(tokens), "tokens": Double(tokens), "eos_id": Double(eos),
                "skipped": Double(skipped),
            ], headline: ["loss"], examples: records.count - skipped, files: [corpus])
    }
}
