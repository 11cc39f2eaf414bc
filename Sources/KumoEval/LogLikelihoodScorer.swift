import Foundation
import KumoInference
import KumoModel

/// Log-likelihoods of continuations under a model, in fp32 with the sums in Double.
///
/// Continuations of one context share its key/value cache (KumoServe's `InferenceEngine`): the
/// context runs through the model once, each continuation continues from a copy of its cache, and
/// all continuations' tokens then go through the model together in one pass.
public final class LogLikelihoodScorer {
    /// The model scored.
    public let model: LlamaModel
    private var cachedEngine: InferenceEngine?

    /// A scorer over `model`; it reads the model's parameters in place, so it follows a model in training.
    public init(model: LlamaModel) { self.model = model }

    /// An engine with at least `slots` slots of at least `positions` positions, reused while it fits.
    private func engineFitting(slots: Int, positions: Int) -> InferenceEngine {
        let old = cachedEngine
        if let old, old.cache.slots >= slots, old.cache.capacity >= positions { return old }
        var capacity = max(old?.cache.capacity ?? 256, 256)
        while capacity < positions { capacity *= 2 }
        let made = InferenceEngine(
            model: model, slots: max(slots, old?.cache.slots ?? 1),
            capacity: min(capacity, model.config.maxPositionEmbeddings))
        cachedEngine = made
        return made
    }

    /// The summed log-probability of each continuation after `context`. A context longer than the
    /// model's positions allow (with the longest continuation after it) loses its oldest tokens.
    public func logLikelihoods(context: [Int32], continuations: [[Int32]]) -> [Double] {
        let limit = model.config.maxPositionEmbeddings
        let longest = continuations.map(\.count).max() ?? 0
        precondition(
            !context.isEmpty && continuations.allSatisfy { !$0.isEmpty }, "scoring needs a context and continuations")
        precondition(longest < limit, "a continuation must fit in the model's positions")
        let prompt = Array(context.suffix(limit - longest))
        let n = prompt.count
        let engine = engineFitting(slots: continuations.count, positions: n + longest)
        let first = engine.prefill(slot: 0, tokens: prompt)
        let firstNorm = first.withUnsafeBufferPointer { Self.logSumExp($0.baseAddress!, count: $0.count) }
        // Every continuation's tokens but the last, at its positions in its own slot.
        var tokens: [Int32] = []
        var slots: [Int32] = []
        var positions: [Int32] = []
        for (c, continuation) in continuations.enumerated() {
            if c > 0 { engine.cache.copyPrefix(from: 0, to: c, count: n) }
            for (j, token) in continuation.dropLast().enumerated() {
                tokens.append(token)
                slots.append(Int32(c))
                positions.append(Int32(n + j))
            }
        }
        let vocab = model.config.vocabSize
        let logits = tokens.isEmpty ? nil : engine.decode(tokens: tokens, slots: slots, positions: positions)
        var row = 0
        return continuations.map { continuation in
            var sum = Double(first[Int(continuation[0])]) - firstNorm
            for token in continuation.dropFirst() {
                let r = logits! + row * vocab
                sum += Double(r[Int(token)]) - Self.logSumExp(r, count: vocab)
                row += 1
            }
            return sum
        }
    }

    /// Greedy continuation of `prompt`: at most `maxTokens` tokens, ending early once `stop` returns
    /// true for the tokens generated so far (the caller trims the text after the stop). A prompt that
    /// leaves fewer than `maxTokens` free positions loses its oldest tokens.
    public func greedy(prompt: [Int32], maxTokens: Int, stop: ([Int32]) -> Bool) -> [Int32] {
        let limit = model.config.maxPositionEmbeddings
        precondition(maxTokens < limit, "the answer must fit in the model's positions")
        let context = Array(prompt.suffix(limit - maxTokens))
        let engine = engineFitting(slots: 1, positions: context.count + maxTokens)
        let vocab = model.config.vocabSize
        var generated = [Self.argmax(engine.prefill(slot: 0, tokens: context))]
        while generated.count < maxTokens && !stop(generated) {
            let logits = engine.decode(
                tokens: [generated.last!], slots: [0], positions: [Int32(context.count + generated.count - 1)])
            generated.append(Self.argmax(Array(UnsafeBufferPointer(start: logits, count: vocab))))
        }
        return generated
    }

    private static func argmax(_ row: [Float]) -> Int32 {
        var best = 0
        for v in 1..<row.count where row[v] > row[best] { best = v }
        return Int32(best)
    }

    /// log Σ exp(row), accumulated in Double.
    static func logSumExp(_ row: UnsafePointer<Float>, count: Int) -> Double {
        var peak = -Float.infinity
        for v in 0..<count { peak = max(peak, row[v]) }
        var sum = 0.0
        for v in 0..<count { sum += exp(Double(row[v] - peak)) }
        return Double(peak) + log(sum)
    }
}
