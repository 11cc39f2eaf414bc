import KumoModel

/// Ranges of the flat gradient buffer all-reduced as one message, in the order backward
/// finishes them (highest offsets first): whole ready ranges (head and final norm, each block,
/// the embedding) merged until a bucket reaches the target size; ranges larger than the target
/// are cut into pieces of the target size.
public struct GradientBuckets: Sendable, Equatable {
    /// The buckets, in launch order.
    public let ranges: [Range<Int>]

    /// The ranges `LlamaModel.backward` reports as final, in the order it reports them.
    public static func readyOrder(_ layout: ParameterLayout) -> [Range<Int>] {
        let blocks = (0..<layout.config.numHiddenLayers).reversed().map {
            layout.blockStart($0)..<layout.blockStart($0) + layout.block.count
        }
        return [layout.finalNorm..<layout.count] + blocks + [0..<layout.blocksStart]
    }

    /// Buckets of at least `targetFloats` floats (the last one may be smaller) over `layout`; a
    /// mixture's experts never share a bucket with other tensors (expert parallelism sums the two
    /// over different groups).
    public init(layout: ParameterLayout, targetFloats: Int) {
        precondition(targetFloats > 0, "bucket size must be positive")
        let expertEdges = Set(layout.expertRanges.flatMap { [$0.lowerBound, $0.upperBound] })
        // Where a bucket may end: the start of each ready range, and every `targetFloats` inside
        // large ones; it must end at the edges of the experts.
        var cuts: [Int] = []
        for ready in Self.readyOrder(layout) {
            var top = ready.upperBound
            let inner = expertEdges.filter { ready.lowerBound < $0 && $0 < ready.upperBound }.sorted(by: >)
            for bottom in inner + [ready.lowerBound] {
                cuts += stride(from: top - targetFloats, to: bottom, by: -targetFloats)
                cuts.append(bottom)
                top = bottom
            }
        }
        var out: [Range<Int>] = []
        var upper = layout.count
        for cut in cuts where upper - cut >= targetFloats || cut == 0 || (expertEdges.contains(cut) && cut < upper) {
            out.append(cut..<upper)
            upper = cut
        }
        ranges = out
    }
}
