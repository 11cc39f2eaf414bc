import KumoData

/// Inputs and next-token targets of one micro-batch, filled from a token stream.
public final class Batch {
    public let batch: Int
    public let seqLen: Int
    public private(set) var inputs: [Int32]
    public private(set) var targets: [Int32]
    private var window: [Int32]

    /// Creates an empty batch of `batch` sequences of `seqLen` tokens.
    public init(batch: Int, seqLen: Int) {
        self.batch = batch
        self.seqLen = seqLen
        inputs = Array(repeating: 0, count: batch * seqLen)
        targets = Array(repeating: 0, count: batch * seqLen)
        window = Array(repeating: 0, count: seqLen + 1)
    }

    /// Loads samples first..<first+batch of `stream`; throws as the stream does for ids outside its vocabulary.
    public func load(from stream: TokenStream, firstSample first: Int) throws {
        for b in 0..<batch {
            try window.withUnsafeMutableBufferPointer { try stream.sample(first + b, into: $0) }
            for t in 0..<seqLen {
                inputs[b * seqLen + t] = window[t]
                targets[b * seqLen + t] = window[t + 1]
            }
        }
    }

    /// Scored (non-ignored) targets.
    public var scoredTokens: Int { targets.reduce(0) { $0 + ($1 == -100 ? 0 : 1) } }
}
