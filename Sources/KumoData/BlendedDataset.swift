/// A deterministic mixture of token streams, as Megatron-LM's `BlendedDataset`: sample `i` goes
/// to the source whose realized share lags its weight most (weight × (i + 1) − samples so far), and
/// takes that source's next sample. Every prefix of the samples tracks the weights within one
/// sample per source, and sample `i` depends only on the weights and `i`, so training resumes at
/// an exact sample.
public struct BlendedDataset: TokenStream, @unchecked Sendable {
    // @unchecked: the sources are immutable after construction.
    public let sources: [TokenStream]
    /// The weights, normalized to sum to 1.
    public let weights: [Double]
    public let numSamples: Int
    public let vocabSize: Int
    private let source: [UInt16]
    private let sourceSample: [Int32]

    /// Mixes `sources` by `weights` (positive; normalized here) over `numSamples` samples; each
    /// source must serve at least `samplesNeeded(weights:total:)` of them.
    public init(sources: [TokenStream], weights: [Double], numSamples: Int) throws {
        guard !sources.isEmpty, sources.count == weights.count, sources.count <= Int(UInt16.max) else {
            throw DatasetError(
                "a blend needs one positive weight per source (got \(sources.count) sources, \(weights.count) weights)")
        }
        guard weights.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw DatasetError("blend weights must be positive numbers: \(weights)")
        }
        let (assigned, _) = Self.assign(weights: weights, total: numSamples)
        self.sources = sources
        self.weights = weights.map { $0 / weights.reduce(0, +) }
        self.numSamples = numSamples
        vocabSize = sources.map(\.vocabSize).max()!
        source = assigned.map { UInt16($0.source) }
        sourceSample = assigned.map { Int32($0.sample) }
    }

    /// How many samples each source serves in a blend of `total` samples.
    public static func samplesNeeded(weights: [Double], total: Int) -> [Int] {
        assign(weights: weights, total: total).1
    }

    /// Source weights proportional to tokens × epochs (LLM-jp's up-sampling by repeating a source).
    public static func weights(tokens: [Int], epochs: [Double]) -> [Double] {
        zip(tokens, epochs).map { Double($0) * $1 }
    }

    /// The source and the source's sample index of each blended sample, and the count per source.
    private static func assign(weights: [Double], total: Int) -> ([(source: Int, sample: Int)], [Int]) {
        let sum = weights.reduce(0, +)
        let share = weights.map { $0 / sum }
        var counts = [Int](repeating: 0, count: weights.count)
        var out: [(source: Int, sample: Int)] = []
        out.reserveCapacity(total)
        for i in 0..<total {
            var best = 0
            var bestLag = -Double.infinity
            for j in share.indices {
                let lag = share[j] * Double(i + 1) - Double(counts[j])
                if lag > bestLag {
                    best = j
                    bestLag = lag
                }
            }
            out.append((best, counts[best]))
            counts[best] += 1
        }
        return (out, counts)
    }

    /// The source that blended sample `index` (modulo numSamples) comes from.
    public func source(ofSample index: Int) -> Int { Int(source[index % numSamples]) }

    /// Fills `window` with blended sample `index` (modulo numSamples).
    public func sample(_ index: Int, into window: UnsafeMutableBufferPointer<Int32>) throws {
        let i = index % numSamples
        try sources[Int(source[i])].sample(Int(sourceSample[i]), into: window)
    }
}
