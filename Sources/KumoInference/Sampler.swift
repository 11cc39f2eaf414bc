import Foundation
import KumoCore

/// How the next token is chosen from the logits.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    public var temperature: Double = 0
    /// Keep only the k most likely tokens (0: all).
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: all).
    public var topP: Double = 1
    /// Divides positive (multiplies negative) logits of tokens already in the sequence (1: off).
    public var repetitionPenalty: Double = 1
    /// Seed of the sampling stream: the same seed, prompt and model give the same tokens.
    public var seed: UInt64 = 0

    /// The defaults: greedy, no penalty.
    public init(
        temperature: Double = 0, topK: Int = 0, topP: Double = 1, repetitionPenalty: Double = 1, seed: UInt64 = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }
}

/// Picks tokens from logits under `SamplingParameters`, with its own seeded random stream.
public struct Sampler: Sendable {
    /// The parameters in force.
    public let parameters: SamplingParameters
    private var rng: SeededRandom

    /// A sampler whose random stream starts from `parameters.seed`.
    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededRandom(seed: parameters.seed)
    }

    /// The next token given `logits` (vocab entries) and the ids of the sequence so far.
    public mutating func next(logits: UnsafePointer<Float>, vocab: Int, history: [Int32]) -> Int32 {
        var l = Array(UnsafeBufferPointer(start: logits, count: vocab))
        Self.applyRepetitionPenalty(&l, history: history, penalty: parameters.repetitionPenalty)
        if parameters.temperature <= 0 { return Int32(Self.argmax(l)) }
        let candidates = Self.candidates(
            l, temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP)
        var u = rng.uniform()
        for c in candidates {
            u -= c.probability
            if u < 0 { return c.id }
        }
        return candidates.last!.id
    }

    /// The index of the largest value (the first one on ties).
    public static func argmax(_ l: [Float]) -> Int {
        var best = 0
        for j in 1..<l.count where l[j] > l[best] { best = j }
        return best
    }

    /// Hugging Face's repetition penalty: every id in `history` has a positive logit divided by
    /// `penalty` and a negative one multiplied by it.
    public static func applyRepetitionPenalty(_ l: inout [Float], history: [Int32], penalty: Double) {
        guard penalty != 1 else { return }
        let p = Float(penalty)
        for id in Set(history) where Int(id) < l.count {
            let i = Int(id)
            l[i] = l[i] > 0 ? l[i] / p : l[i] * p
        }
    }

    /// The tokens sampling may pick, most likely first, with probabilities renormalised to sum to 1:
    /// softmax(l / temperature), cut to the `topK` most likely, then to the smallest prefix whose
    /// probability reaches `topP`.
    public static func candidates(
        _ l: [Float], temperature: Double, topK: Int, topP: Double
    ) -> [(id: Int32, probability: Double)] {
        let order = l.indices.sorted { l[$0] > l[$1] || (l[$0] == l[$1] && $0 < $1) }
        let kept = topK > 0 ? Array(order.prefix(topK)) : order
        let top = Double(l[kept[0]])
        var weights = kept.map { Foundation.exp((Double(l[$0]) - top) / temperature) }
        var total = weights.reduce(0, +)
        if topP < 1 {
            var cumulative = 0.0
            var cut = weights.count
            for (i, w) in weights.enumerated() {
                cumulative += w / total
                if cumulative >= topP {
                    cut = i + 1
                    break
                }
            }
            weights.removeLast(weights.count - cut)
            total = weights.reduce(0, +)
        }
        return weights.enumerated().map { (Int32(kept[$0.offset]), $0.element / total) }
    }
}
