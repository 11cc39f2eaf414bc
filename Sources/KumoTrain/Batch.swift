import KumoData

/// Inputs, next-token targets and in-document positions of one micro-batch of `batch` rows,
/// filled from a sequence source.
public final class Batch {
    /// Rows (sequences) of the micro-batch.
    public let batch: Int
    public let seqLen: Int
    public private(set) var inputs: [Int32]
    public private(set) var targets: [Int32]
    /// Each token's position within its document (see `SequenceRows`).
    public private(set) var positions: [Int32]
    /// Whether some row holds a document that starts after the row's first token (the model then
    /// needs `positions`; otherwise every row is one causal sequence).
    public private(set) var resetsPositions = false

    /// Creates an empty batch of `batch` rows of `seqLen` tokens.
    public init(batch: Int, seqLen: Int) {
        self.batch = batch
        self.seqLen = seqLen
        inputs = Array(repeating: 0, count: batch * seqLen)
        targets = Array(repeating: 0, count: batch * seqLen)
        positions = Array(repeating: 0, count: batch * seqLen)
    }

    /// Loads samples first..<first + batch / rowsPerSample of `source`; throws as the source does
    /// for ids outside its vocabulary.
    public func load(from source: any SequenceSource, firstSample first: Int) throws {
        let per = source.rowsPerSample
        precondition(batch % per == 0, "a batch holds whole samples of \(per) rows")
        let span = per * seqLen
        try inputs.withUnsafeMutableBufferPointer { inputs in
            try targets.withUnsafeMutableBufferPointer { targets in
                try positions.withUnsafeMutableBufferPointer { positions in
                    for s in 0..<batch / per {
                        let range = s * span..<(s + 1) * span
                        try source.fill(
                            sample: first + s,
                            into: SequenceRows(
                                rows: per, seqLen: seqLen, inputs: .init(rebasing: inputs[range]),
                                targets: .init(rebasing: targets[range]), positions: .init(rebasing: positions[range])))
                    }
                }
            }
        }
        resetsPositions = positions.indices.contains { positions[$0] != Int32($0 % seqLen) }
    }

    /// Scored (non-ignored) targets.
    public var scoredTokens: Int { targets.reduce(0) { $0 + ($1 == -100 ? 0 : 1) } }
}
