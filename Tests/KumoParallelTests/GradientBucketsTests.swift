import KumoComm
import KumoCore
import KumoModel
import XCTest

@testable import KumoParallel

final class GradientBucketsTests: XCTestCase {
    private func layout(tied: Bool) -> ParameterLayout {
        ParameterLayout(
            ModelConfig(
                vocabSize: 1000, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 3, numAttentionHeads: 4,
                numKeyValueHeads: 2, maxPositionEmbeddings: 64, tieWordEmbeddings: tied))
    }

    /// A one-rank data-parallel group (tensor or pipeline parallelism alone) already holds the
    /// sum: a synchronised backward starts no all-reduce, counts no bytes and leaves the gradients.
    func testOneRankGroupReducesNothing() {
        let l = layout(tied: false)
        let grads = FloatBuffer((0..<l.count).map { Float($0 % 97) })
        let expected = grads.array
        let group = LocalCommunicator(name: "dp")
        let dp = DataParallel(layout: l, grads: grads, group: group, bucketBytes: 4096)
        XCTAssertGreaterThan(dp.buckets.ranges.count, 1)
        dp.beginSync()
        for range in GradientBuckets.readyOrder(l) { dp.gradientsReady(range) }
        dp.finishSync()
        XCTAssertEqual(group.counters.totals, [:])
        XCTAssertEqual(grads.array, expected)
    }

    func testBucketsTileTheBufferFromTheTopInBackwardOrder() {
        for tied in [false, true] {
            let l = layout(tied: tied)
            for target in [1, 5000, 40_000, 10_000_000] {
                let b = GradientBuckets(layout: l, targetFloats: target).ranges
                XCTAssertEqual(b.first?.upperBound, l.count)
                XCTAssertEqual(b.last?.lowerBound, 0)
                for (x, y) in zip(b, b.dropFirst()) { XCTAssertEqual(x.lowerBound, y.upperBound) }
                for r in b.dropLast() { XCTAssertGreaterThanOrEqual(r.count, min(target, l.count)) }
            }
        }
    }

    func testBucketsEndOnlyWhereBackwardFinishesARangeOrInsideLargeRanges() {
        let l = layout(tied: false)
        let ready = GradientBuckets.readyOrder(l)
        XCTAssertEqual(ready.first, l.finalNorm..<l.count)
        XCTAssertEqual(ready.last, 0..<l.blocksStart)
        let target = l.block.count / 2 + 1
        let starts = Set(ready.map(\.lowerBound))
        for r in GradientBuckets(layout: l, targetFloats: target).ranges {
            let inside = ready.first { $0.contains(r.lowerBound) }!
            XCTAssertTrue(
                starts.contains(r.lowerBound) || (inside.upperBound - r.lowerBound) % target == 0,
                "bucket \(r) starts inside \(inside)")
        }
        // A target of one float makes every float a bucket; a target of the whole buffer, one bucket.
        XCTAssertEqual(GradientBuckets(layout: l, targetFloats: 1).ranges.count, l.count)
        XCTAssertEqual(GradientBuckets(layout: l, targetFloats: l.count).ranges, [0..<l.count])
    }
}

/// A mixture's experts are summed over other ranks than the rest under expert parallelism: no
/// bucket may hold both.
final class ExpertBucketTests: XCTestCase {
    /// The exchange counts rows as fp32: a micro-batch routing 2²⁴ rows or more is refused by name.
    func testMicroBatchesBeyondWhatTheExchangeCountsAreRefused() throws {
        let c = ModelConfig(
            vocabSize: 50, hiddenSize: 16, intermediateSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
            numLocalExperts: 4, numExpertsPerTok: 2)
        let parallel = ParallelConfig(expert: 2)
        XCTAssertNoThrow(try parallel.validate(c, batch: BatchShape(micro: 1, global: 2, seqLen: 1 << 22)))
        XCTAssertThrowsError(try parallel.validate(c, batch: BatchShape(micro: 4, global: 8, seqLen: 1 << 21))) {
            XCTAssertTrue("\($0)".contains("exceed the 2^24"), "\($0)")
        }
    }

    func testNoBucketHoldsExpertsAndOtherTensors() throws {
        let c = ModelConfig(
            vocabSize: 50, hiddenSize: 16, intermediateSize: 8, numHiddenLayers: 3, numAttentionHeads: 2,
            numLocalExperts: 4, numExpertsPerTok: 2)
        let layout = ParameterLayout(c)
        XCTAssertEqual(layout.expertRanges.count, 3)
        for target in [7, 100, 1000, 100_000] {
            let buckets = GradientBuckets(layout: layout, targetFloats: target)
            XCTAssertEqual(buckets.ranges.reduce(0) { $0 + $1.count }, layout.count)
            for b in buckets.ranges {
                let inside = layout.expertRanges.filter { $0.overlaps(b) }
                XCTAssertTrue(
                    inside.allSatisfy { $0.lowerBound <= b.lowerBound && b.upperBound <= $0.upperBound },
                    "\(b) at \(target)")
            }
        }
    }
}
