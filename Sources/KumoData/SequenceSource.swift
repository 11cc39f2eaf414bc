/// The rows of a micro-batch one sample fills, `rows × seqLen` tokens each: the input ids, the
/// next-token targets (`-100`: not scored) and each token's position within its document. Positions
/// count 0, 1, … from each document's start; a token at row offset t attends to the tokens
/// t − positions[t] … t of its row only, so no token attends across a document boundary (Megatron's
/// reset_position_ids and reset_attention_mask).
public struct SequenceRows {
    public let rows: Int
    public let seqLen: Int
    public let inputs: UnsafeMutableBufferPointer<Int32>
    public let targets: UnsafeMutableBufferPointer<Int32>
    public let positions: UnsafeMutableBufferPointer<Int32>

    /// Views `rows × seqLen` entries of each buffer.
    public init(
        rows: Int, seqLen: Int, inputs: UnsafeMutableBufferPointer<Int32>, targets: UnsafeMutableBufferPointer<Int32>,
        positions: UnsafeMutableBufferPointer<Int32>
    ) {
        precondition([inputs.count, targets.count, positions.count].allSatisfy { $0 == rows * seqLen })
        (self.rows, self.seqLen, self.inputs, self.targets, self.positions) = (rows, seqLen, inputs, targets, positions)
    }
}

/// Where the trainer's sequences come from: sample `i` fills `rowsPerSample` rows, deterministically.
public protocol SequenceSource {
    /// Number of distinct token ids the source produces.
    var vocabSize: Int { get }
    /// Rows one sample fills: 1, or 2 for a preference pair (chosen, then rejected).
    var rowsPerSample: Int { get }
    /// Fills `rows` with sample `index`; throws when stored data holds an id outside 0..<vocabSize.
    func fill(sample index: Int, into rows: SequenceRows) throws
}

extension TokenStream {
    public var rowsPerSample: Int { 1 }

    /// One window of `seqLen + 1` tokens: inputs its first `seqLen`, targets its last, positions
    /// 0..<seqLen (documents inside the window attend to each other, as in GPT pretraining).
    public func fill(sample index: Int, into rows: SequenceRows) throws {
        let t = rows.seqLen
        try withUnsafeTemporaryAllocation(of: Int32.self, capacity: t + 1) { window in
            try sample(index, into: window)
            for i in 0..<t {
                rows.inputs[i] = window[i]
                rows.targets[i] = window[i + 1]
                rows.positions[i] = Int32(i)
            }
        }
    }
}

/// Windows of a token stream with positions and attention reset after every end-of-document token
/// (`data.reset_attention = true`): each document in a window is seen as if it were alone.
public struct DocumentResetSource: SequenceSource {
    public let stream: any TokenStream
    /// The end-of-document token: the token after it starts a new document.
    public let eod: Int32

    /// Wraps `stream`, whose documents end with `eod`.
    public init(stream: any TokenStream, eod: Int32) {
        self.stream = stream
        self.eod = eod
    }

    public var vocabSize: Int { stream.vocabSize }
    public var rowsPerSample: Int { 1 }

    public func fill(sample index: Int, into rows: SequenceRows) throws {
        try stream.fill(sample: index, into: rows)
        var position: Int32 = 0
        for i in 0..<rows.seqLen {
            rows.positions[i] = position
            position = rows.inputs[i] == eod ? 0 : position + 1
        }
    }
}
