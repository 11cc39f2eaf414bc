import Foundation

/// A token's log-probability under the model, and the most likely alternatives at its position.
public struct TokenLogprob: Sendable {
    /// The token.
    public var token: Int32
    /// log p(token | preceding tokens).
    public var logprob: Double
    /// The `top` most likely tokens at this position with their log-probabilities, most likely first.
    public var top: [(token: Int32, logprob: Double)]

    /// Log-softmax of `logits` read at `token`, with the `top` best alternatives.
    public init(logits: UnsafePointer<Float>, vocab: Int, token: Int32, top: Int) {
        var maxLogit = -Float.infinity
        for j in 0..<vocab { maxLogit = max(maxLogit, logits[j]) }
        var sum = 0.0
        for j in 0..<vocab { sum += exp(Double(logits[j] - maxLogit)) }
        let logZ = Double(maxLogit) + log(sum)
        self.token = token
        logprob = Double(logits[Int(token)]) - logZ
        var best: [(token: Int32, logprob: Double)] = []
        if top > 0 {
            for j in 0..<vocab where best.count < top || Double(logits[j]) - logZ > best.last!.logprob {
                best.append((Int32(j), Double(logits[j]) - logZ))
                best.sort { $0.logprob > $1.logprob }
                if best.count > top { best.removeLast() }
            }
        }
        self.top = best
    }
}
