import KumoCore

/// GPT training samples from an indexed dataset, as Megatron-LM's `GPTDataset` builds them: the
/// sequences, in an order shuffled by seed and epoch, are concatenated and cut into windows of
/// `seqLength + 1` tokens, each starting at the last token of the one before; the windows are then
/// served in an order shuffled by seed. As many epochs as `numSamples` needs are used; sample `i`
/// depends only on the dataset, the seed and `i`, so training resumes at an exact sample.
public struct GPTDataset: TokenStream, Sendable {
    public let dataset: IndexedDataset
    public let seqLength: Int
    public let numSamples: Int
    public let seed: UInt64
    public let vocabSize: Int
    /// Epochs over the dataset that the samples span.
    public let epochs: Int
    /// Sequence order over all epochs (Megatron's document index).
    private let order: [Int32]
    /// Where each window starts: a position in `order` and a token offset in that sequence.
    private let starts: [(position: Int32, offset: Int32)]
    /// Window served as sample i (Megatron's shuffle index).
    private let shuffle: [Int32]

    /// Builds the indices for `numSamples` windows of `seqLength + 1` tokens over `dataset`, whose ids
    /// lie in 0..<vocabSize.
    public init(dataset: IndexedDataset, seqLength: Int, numSamples: Int, seed: UInt64, vocabSize: Int) throws {
        precondition(seqLength >= 1 && numSamples >= 0)
        let perEpoch = dataset.tokenCount
        guard perEpoch > 0 else { throw DatasetError("\(dataset.prefix): the dataset has no tokens") }
        // Windows available from e epochs: (e * perEpoch - 1) / seqLength.
        let epochs = max(1, (numSamples * seqLength + 1 + perEpoch - 1) / perEpoch)
        guard epochs * dataset.sequenceCount < Int(Int32.max) else {
            throw DatasetError(
                "\(dataset.prefix): \(numSamples) samples need \(epochs) epochs of \(dataset.sequenceCount) sequences, "
                    + "more than this index can hold")
        }
        var order: [Int32] = []
        order.reserveCapacity(epochs * dataset.sequenceCount)
        for epoch in 0..<epochs {
            var ids = (0..<Int32(dataset.sequenceCount)).map { $0 }
            var random = SeededRandom(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
            ids.shuffle(using: &random)
            order += ids
        }
        var starts: [(position: Int32, offset: Int32)] = []
        starts.reserveCapacity(numSamples)
        var position = 0
        var offset = 0
        for _ in 0..<numSamples {
            starts.append((Int32(position), Int32(offset)))
            // Advance seqLength tokens: the next window starts at this one's last token.
            var remaining = seqLength
            while remaining > 0 {
                let available = dataset.sequenceLength(Int(order[position])) - offset
                if available > remaining {
                    offset += remaining
                    remaining = 0
                } else {
                    remaining -= available
                    position += 1
                    offset = 0
                }
            }
        }
        var shuffle = (0..<Int32(numSamples)).map { $0 }
        var random = SeededRandom(seed: seed ^ 0x5851_F42D_4C95_7F2D)
        shuffle.shuffle(using: &random)
        self.dataset = dataset
        self.seqLength = seqLength
        self.numSamples = numSamples
        self.seed = seed
        self.vocabSize = vocabSize
        self.epochs = epochs
        self.order = order
        self.starts = starts
        self.shuffle = shuffle
    }

    /// Fills `window` (seqLength + 1 tokens) with sample `index` (modulo numSamples); throws if a token
    /// read lies outside 0..<vocabSize (a corrupt `.bin`, or one made with another tokenizer).
    public func sample(_ index: Int, into window: UnsafeMutableBufferPointer<Int32>) throws {
        precondition(window.count == seqLength + 1, "window of \(window.count) tokens, expected \(seqLength + 1)")
        precondition(numSamples > 0, "the dataset was built for no samples")
        let start = starts[Int(shuffle[index % numSamples])]
        var position = Int(start.position)
        var offset = Int(start.offset)
        var filled = 0
        while filled < window.count {
            let sequence = Int(order[position])
            let n = min(dataset.sequenceLength(sequence) - offset, window.count - filled)
            if n > 0 {
                let piece = window.baseAddress! + filled
                dataset.copyTokens(sequence: sequence, offset: offset, count: n, into: piece)
                try checkVocabulary(UnsafeBufferPointer(start: piece, count: n), sequence: sequence, offset: offset)
            }
            filled += n
            position += 1
            offset = 0
        }
    }

    /// Throws, naming the file, document and position, if `tokens` (read from `sequence` at `offset`)
    /// hold an id outside 0..<vocabSize.
    private func checkVocabulary(_ tokens: UnsafeBufferPointer<Int32>, sequence: Int, offset: Int) throws {
        guard let k = tokens.firstIndex(where: { $0 < 0 || Int($0) >= vocabSize }) else { return }
        throw DatasetError(
            "\(dataset.prefix).bin: document \(dataset.document(ofSequence: sequence)) (sequence \(sequence)) holds "
                + "token id \(tokens[k]) at token \(offset + k), outside the vocabulary 0..<\(vocabSize): the file "
                + "is corrupt or was made with another tokenizer; prepare it again")
    }
}
