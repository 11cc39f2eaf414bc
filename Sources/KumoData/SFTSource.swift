import KumoCore

/// What became of the examples of an SFT source: kept, truncated or skipped (by reason), and how
/// they fill the rows. Recorded in the run directory (`data_sft.json`).
public struct SFTDataStats: Codable, Equatable, Sendable {
    /// Examples offered to the source.
    public var examples = 0
    /// Examples in the rows (truncated ones included).
    public var kept = 0
    /// Examples longer than a row, cut to their first `seq_length + 1` tokens (`data.overlong = "truncate"`).
    public var truncated = 0
    /// Examples longer than a row, left out (`data.overlong = "skip"`).
    public var skippedOverlong = 0
    /// Examples whose prompt alone fills a row (no response token would be scored), left out.
    public var skippedLongPrompt = 0
    /// Examples with an empty response (nothing but the EOS to learn), left out.
    public var skippedEmptyResponse = 0
    /// Rows of `seq_length` tokens the kept examples fill.
    public var rows = 0
    /// Scored targets over all rows: the response tokens, EOS included.
    public var responseTokens = 0
    /// Row slots that hold no example.
    public var paddingTokens = 0

    public init() {}

    /// One line for the run's data summary.
    public var summary: String {
        return "\(kept) of \(examples) examples in \(rows) rows, \(responseTokens) response tokens scored, "
            + "\(paddingTokens) padding tokens; truncated \(truncated), skipped \(skippedOverlong) overlong, "
            + "\(skippedLongPrompt) with a prompt filling the row, \(skippedEmptyResponse) with an empty response"
    }
}

/// Supervised fine-tuning rows: prompt–response examples, each example of tokens x0 … x(n−1)
/// taking n − 1 slots of a row (input xᵢ, target xᵢ₊₁), so an example of up to `seqLength + 1`
/// tokens fits one row. Targets are −100 (not scored) where xᵢ₊₁ is a prompt token, so the loss
/// falls on the response and its EOS only; positions restart at 0 at every example's start.
///
/// With packing, examples in a seeded shuffled order fill rows greedily, never split across rows;
/// without it each row holds one example. A row ends in padding (the pad token, targets −100,
/// positions counting from 0 again). Sample `i` is row `i mod rows` under a seeded permutation drawn
/// anew for every pass over the rows, so a sample depends only on the examples, the seed and `i`.
public struct SFTSource: SequenceSource, Sendable {
    public let seqLength: Int
    public let vocabSize: Int
    /// The token of padding slots.
    public let pad: Int32
    /// What became of the examples.
    public let stats: SFTDataStats
    /// The kept examples' tokens, one after another.
    private let tokens: [Int32]
    /// Example e is tokens[starts[e]..<starts[e + 1]].
    private let starts: [Int]
    /// Prompt tokens of each kept example.
    private let promptCounts: [Int]
    /// Row r holds the kept examples rowStarts[r]..<rowStarts[r + 1].
    private let rowStarts: [Int]
    /// Sample i is row order[i % order.count].
    private let order: [Int32]

    public var rowsPerSample: Int { 1 }

    /// Builds the rows of `examples` for rows of `seqLength` slots; `numSamples` (the samples a run
    /// draws) sets how many per-pass permutations are drawn up front.
    public init(
        examples: [PromptResponseTokens], seqLength: Int, vocabSize: Int, pad: Int32, packing: Bool,
        truncate: Bool, seed: UInt64, numSamples: Int
    ) {
        precondition(seqLength >= 1)
        var stats = SFTDataStats()
        stats.examples = examples.count
        var random = SeededRandom(seed: seed ^ 0x243F_6A88_85A3_08D3)
        var tokens: [Int32] = []
        var starts = [0]
        var promptCounts: [Int] = []
        for e in Array(examples.indices).shuffled(using: &random) {
            guard let kept = Self.fit(examples[e], seqLength: seqLength, truncate: truncate, stats: &stats) else {
                continue
            }
            tokens += kept.tokens
            starts.append(tokens.count)
            promptCounts.append(kept.prompt)
        }
        (self.tokens, self.starts, self.promptCounts) = (tokens, starts, promptCounts)
        (self.seqLength, self.vocabSize, self.pad) = (seqLength, vocabSize, pad)
        var rowStarts = [0]
        var used = 0
        for e in promptCounts.indices {
            let slots = starts[e + 1] - starts[e] - 1
            if !packing || used + slots > seqLength, e > 0 {
                rowStarts.append(e)
                stats.paddingTokens += seqLength - used
                used = 0
            }
            used += slots
            stats.responseTokens += slots + 1 - max(promptCounts[e], 1)
        }
        if !promptCounts.isEmpty {
            rowStarts.append(promptCounts.count)
            stats.paddingTokens += seqLength - used
        }
        self.rowStarts = rowStarts
        stats.rows = rowStarts.count - 1
        stats.kept = promptCounts.count
        self.stats = stats
        var order: [Int32] = []
        let rows = stats.rows
        while rows > 0 && order.count < max(numSamples, rows) {
            order += Array(0..<Int32(rows)).shuffled(using: &random)
        }
        self.order = order
    }

    /// The tokens of `example` that fit a row and its prompt count, or nil (counted) when it is left out.
    private static func fit(
        _ example: PromptResponseTokens, seqLength: Int, truncate: Bool, stats: inout SFTDataStats
    ) -> (tokens: [Int32], prompt: Int)? {
        if example.response.count <= 1 {
            stats.skippedEmptyResponse += 1
            return nil
        }
        var all = example.tokens
        if all.count > seqLength + 1 {
            guard truncate else {
                stats.skippedOverlong += 1
                return nil
            }
            guard example.prompt.count <= seqLength else {
                stats.skippedLongPrompt += 1
                return nil
            }
            all.removeLast(all.count - seqLength - 1)
            stats.truncated += 1
        }
        return (all, example.prompt.count)
    }

    /// Fills the row of sample `index`.
    public func fill(sample index: Int, into rows: SequenceRows) throws {
        precondition(!order.isEmpty, "an SFT source without rows has no samples")
        precondition(rows.seqLen == seqLength, "rows of \(seqLength) tokens")
        let r = Int(order[index % order.count])
        var slot = 0
        for e in rowStarts[r]..<rowStarts[r + 1] {
            let start = starts[e]
            for i in 0..<(starts[e + 1] - start - 1) {
                rows.inputs[slot] = tokens[start + i]
                rows.targets[slot] = i + 1 < promptCounts[e] ? -100 : tokens[start + i + 1]
                rows.positions[slot] = Int32(i)
                slot += 1
            }
        }
        for p in 0..<(seqLength - slot) {
            rows.inputs[slot + p] = pad
            rows.targets[slot + p] = -100
            rows.positions[slot + p] = Int32(p)
        }
    }
}
