/// ZeRO's partition of the flat parameter space: rank r of N owns the contiguous range
/// [r·S, min((r+1)·S, count)) with S = ⌈count / N⌉, and keeps optimizer state for it alone.
public struct ZeROPartition: Sendable, Equatable {
    /// Floats in the whole flat buffer.
    public let count: Int
    /// Ranks sharing it.
    public let ranks: Int

    /// The partition of `count` floats over `ranks` ranks.
    public init(count: Int, ranks: Int) {
        precondition(count >= 0 && ranks >= 1, "a partition needs a count >= 0 and at least one rank")
        self.count = count
        self.ranks = ranks
    }

    /// Floats per shard (the last one may hold fewer).
    public var shardSize: Int { (count + ranks - 1) / ranks }

    /// The range owned by `rank`.
    public func range(of rank: Int) -> Range<Int> {
        min(count, rank * shardSize)..<min(count, (rank + 1) * shardSize)
    }

    /// Floats owned by each rank, in rank order (the counts of an all-gather of the whole buffer).
    public var counts: [Int] { (0..<ranks).map { range(of: $0).count } }
}
