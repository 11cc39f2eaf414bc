import Foundation

/// The scoring windows of a perplexity run over `count` tokens.
///
/// Windows of `contextLength` tokens start every `stride` tokens; each scores the tokens that no
/// earlier window scored, conditioned on the tokens before them in the window. With a stride below
/// the context length every token but the first is scored with at least `contextLength - stride`
/// tokens of context; with stride = context length the windows do not overlap and each window's
/// first token is not scored.
public struct PerplexityWindow: Equatable, Sendable {
    /// First token of the window (context starts here).
    public var begin: Int
    /// First scored token.
    public var scoreStart: Int
    /// One past the last token.
    public var end: Int

    /// The windows over `count` tokens.
    public static func plan(count: Int, contextLength: Int, stride: Int) -> [PerplexityWindow] {
        precondition(contextLength > 1 && stride > 0 && stride <= contextLength, "bad perplexity window")
        var windows: [PerplexityWindow] = []
        var begin = 0
        var scoredUpTo = 0
        while scoredUpTo < count {
            let end = min(begin + contextLength, count)
            let start = max(scoredUpTo, begin + 1)
            if start < end { windows.append(PerplexityWindow(begin: begin, scoreStart: start, end: end)) }
            scoredUpTo = end
            begin += stride
        }
        return windows
    }
}

extension Evaluator {
    /// Perplexity and bits per byte of the model on `options.corpus` (JSONL, a "text" field per line):
    /// the documents, each preceded by the tokenizer's end-of-document token, as one token stream.
    func runPerplexity() throws -> TaskResult {
        guard let corpus = options.corpus else {
            throw EvalDataError("--corpus", "the perplexity task needs --corpus FILE.jsonl (a \"text\" field per line)")
        }
        let texts: [String] = try limited(JGLUE.jsonLines(corpus)).enumerated().map { i, o in
            guard let text = o["text"] as? String else {
                throw EvalDataError(corpus, "line \(i + 1) has no string \"text\"")
            }
            return text
        }
        var tokens: [Int32] = []
        for text in texts { tokens += [tokenizer.eod] + tokenizer.encode(text) }
        let windows = PerplexityWindow.plan(
            count: tokens.count, contextLength: options.contextLength, stride: options.stride)
        var total = 0.0
        var scored = 0
        var perWindow: [[Double]] = []
        for (i, w) in windows.enumerated() {
            let ll = scorer.logLikelihoods(
                context: Array(tokens[w.begin..<w.scoreStart]), continuations: [Array(tokens[w.scoreStart..<w.end])])[0]
            total += ll
            scored += w.end - w.scoreStart
            perWindow.append([Double(w.begin), Double(w.scoreStart), Double(w.end), ll])
            progress(i + 1, windows.count)
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        promptSink?([
            "task": "perplexity", "texts": texts, "separator": Int(tokenizer.eod),
            "context_length": options.contextLength,
            "stride": options.stride, "kumo_tokens": tokens.count, "kumo_windows": perWindow,
            "kumo_loglikelihood": total,
        ])
        return TaskResult(
            task: .perplexity,
            metrics: [
                "perplexity": exp(-total / Double(scored)), "bits_per_byte": -total / (log(2) * Double(bytes)),
                "tokens_scored": Double(scored), "bytes": Double(bytes),
            ], headline: ["perplexity", "bits_per_byte"], examples: texts.count, files: [corpus])
    }
}
