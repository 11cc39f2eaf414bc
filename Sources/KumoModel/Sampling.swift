import Foundation
import KumoCore

extension LlamaModel {
    /// Continues `prompt` by `maxNewTokens` tokens sampled at `temperature` (0: greedy),
    /// recomputing the forward pass over the last `context` tokens for each new token.
    public func generate(
        prompt: [Int32], maxNewTokens: Int, temperature: Double, context: Int, seed: UInt64
    ) -> [Int32] {
        var tokens = prompt
        var rng = SeededRandom(seed: seed)
        let vocab = config.vocabSize
        for _ in 0..<maxNewTokens {
            let window = Array(tokens.suffix(min(context, config.maxPositionEmbeddings)))
            let logits = window.withUnsafeBufferPointer {
                forward(tokens: $0.baseAddress!, batch: 1, seqLen: window.count)
            }
            let last = logits + (window.count - 1) * vocab
            var best = 0
            for j in 1..<vocab where last[j] > last[best] { best = j }
            if temperature <= 0 {
                tokens.append(Int32(best))
                continue
            }
            var weights = [Double](repeating: 0, count: vocab)
            var total = 0.0
            for j in 0..<vocab {
                weights[j] = exp(Double(last[j] - last[best]) / temperature)
                total += weights[j]
            }
            var u = rng.uniform() * total
            var pick = vocab - 1
            for j in 0..<vocab {
                u -= weights[j]
                if u < 0 {
                    pick = j
                    break
                }
            }
            tokens.append(Int32(pick))
        }
        return Array(tokens.dropFirst(prompt.count))
    }
}
