import XCTest

@testable import KumoParallel

final class ZeROPartitionTests: XCTestCase {
    func testShardsTileTheBufferInRankOrderWithAtMostOneShortShard() {
        for (count, ranks) in [(10, 3), (12, 4), (5, 8), (1_000_003, 7), (7, 1)] {
            let p = ZeROPartition(count: count, ranks: ranks)
            XCTAssertEqual(p.range(of: 0).lowerBound, 0)
            XCTAssertEqual(p.range(of: ranks - 1).upperBound, count, "\(count) over \(ranks)")
            for r in 1..<ranks { XCTAssertEqual(p.range(of: r).lowerBound, p.range(of: r - 1).upperBound) }
            XCTAssertEqual(p.counts.reduce(0, +), count)
            XCTAssertEqual(p.counts.max(), p.shardSize)
            XCTAssertEqual(p.shardSize, (count + ranks - 1) / ranks)
        }
    }
}
