import Foundation
import KumoModel

/// Log-likelihoods of continuations under a model, in fp32 with the sums in Double.
///
/// The requests of one call run as one batch: each row holds context then continuation, padded on
/// the right to the longest row (a causal model never attends to the padding). The token buffer and
/// the model's activation buffers are reused while the batch shape stays the same.
public final class LogLikelihoodScorer {
    /// The model scored.
    public let model: LlamaModel
    private var tokens: [Int32] = []

    /// A scorer over `model`.
    public init(model: LlamaModel) { self.model = model }

    /// One scoring request: the continuation's tokens after the context's.
    public struct Request {
        /// Tokens the continuation is conditioned on (at least one).
        public var context: [Int32]
        /// Tokens whose log-probabilities are summed.
        public var continuation: [Int32]

        /// A request scoring `continuation` after `context`.
        public init(context: [Int32], continuation: [Int32]) {
            self.context = context
            self.continuation = continuation
        }
    }

    /// The summed log-probability of each request's continuation; contexts longer than the model's
    /// positions allow lose their oldest tokens.
    public func logLikelihoods(_ requests: [Request]) -> [Double] {
        let limit = model.config.maxPositionEmbeddings
        let rows: [(tokens: [Int32], first: Int)] = requests.map { r in
            precondition(!r.context.isEmpty && !r.continuation.isEmpty, "scoring needs a context and a continuation")
            precondition(r.continuation.count < limit, "a continuation must fit in the model's positions")
            let all = r.context + r.continuation
            let drop = max(0, all.count - limit)
            return (Array(all[drop...]), r.context.count - drop)
        }
        let longest = rows.map(\.tokens.count).max() ?? 0
        let seqLen = longest
        let needed = rows.count * seqLen
        if tokens.count != needed { tokens = [Int32](repeating: 0, count: needed) }
        for (i, row) in rows.enumerated() {
            for j in 0..<seqLen { tokens[i * seqLen + j] = j < row.tokens.count ? row.tokens[j] : 0 }
        }
        let logits = tokens.withUnsafeBufferPointer {
            model.forward(tokens: $0.baseAddress!, batch: rows.count, seqLen: seqLen)
        }
        let vocab = model.config.vocabSize
        return rows.enumerated().map { i, row in
            var sum = 0.0
            for p in row.first..<row.tokens.count {
                sum += Self.logSoftmax(logits + (i * seqLen + p - 1) * vocab, count: vocab, at: Int(row.tokens[p]))
            }
            return sum
        }
    }

    /// Greedy continuation of `prompt`: at most `maxTokens` tokens, ending early once `stop` returns
    /// true for the tokens generated so far (the caller trims the text after the stop).
    public func greedy(prompt: [Int32], maxTokens: Int, stop: ([Int32]) -> Bool) -> [Int32] {
        let limit = model.config.maxPositionEmbeddings
        var generated: [Int32] = []
        let vocab = model.config.vocabSize
        while generated.count < maxTokens {
            let all = prompt + generated
            let window = Array(all[max(0, all.count - limit)...])
            let logits = window.withUnsafeBufferPointer {
                model.forward(tokens: $0.baseAddress!, batch: 1, seqLen: window.count)
            }
            let row = logits + (window.count - 1) * vocab
            var best = 0
            for v in 1..<vocab where row[v] > row[best] { best = v }
            generated.append(Int32(best))
            if stop(generated) { break }
        }
        return generated
    }

    /// log softmax(row)[index], accumulated in Double.
    static func logSoftmax(_ row: UnsafePointer<Float>, count: Int, at index: Int) -> Double {
        var peak = -Float.infinity
        for v in 0..<count { peak = max(peak, row[v]) }
        var sum = 0.0
        for v in 0..<count { sum += exp(Double(row[v] - peak)) }
        return Double(row[index] - peak) - log(sum)
    }
}
