/// A source of training windows: `seqLen + 1` consecutive tokens per sample, from which
/// inputs are the first `seqLen` and targets the last `seqLen`.
public protocol TokenStream: SequenceSource {
    /// Number of distinct token ids the stream produces.
    var vocabSize: Int { get }
    /// Fills `window` (seqLen + 1 tokens) with sample `index` of the stream; deterministic. Throws
    /// when the stored data holds an id outside 0..<vocabSize, naming the file and the document.
    func sample(_ index: Int, into window: UnsafeMutableBufferPointer<Int32>) throws
}

/// Seeded uniformly random tokens: for tests and benchmarks, no files needed.
public struct SyntheticTokenStream: TokenStream {
    public let vocabSize: Int
    public let seed: UInt64

    /// Creates the stream for token ids in 0..<vocabSize.
    public init(vocabSize: Int, seed: UInt64) {
        self.vocabSize = vocabSize
        self.seed = seed
    }

    public func sample(_ index: Int, into window: UnsafeMutableBufferPointer<Int32>) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03
        for i in window.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            window[i] = Int32(truncatingIfNeeded: (state >> 33) % UInt64(vocabSize))
        }
    }
}

/// A tokenized corpus held in memory; sample i is a window at a seeded pseudo-random offset.
public struct InMemoryTokenStream: TokenStream {
    public let tokens: [Int32]
    public let vocabSize: Int
    public let seed: UInt64

    /// Creates the stream over `tokens` (at least one window long).
    public init(tokens: [Int32], vocabSize: Int, seed: UInt64) {
        self.tokens = tokens
        self.vocabSize = vocabSize
        self.seed = seed
    }

    public func sample(_ index: Int, into window: UnsafeMutableBufferPointer<Int32>) {
        let span = tokens.count - window.count
        precondition(span >= 0, "corpus shorter than one training window")
        var state = (seed ^ 0xA076_1D64_78BD_642F) &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
        state = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
        state = (state ^ (state >> 27)) &* 0x94D0_49BB_1331_11EB
        state ^= state >> 31
        let start = Int(state % UInt64(span + 1))
        for i in window.indices { window[i] = tokens[start + i] }
    }
}
