import XCTest

@testable import KumoComm

final class DeviceMeshTests: XCTestCase {
    func testDataParallelSizeIsDerivedAndTensorRanksVaryFastest() throws {
        let m = try DeviceMesh(world: 16, tensor: 2, pipeline: 2)
        XCTAssertEqual(m.data, 4)
        XCTAssertEqual(m.coordinate(of: 0), .init(tensor: 0, data: 0, pipeline: 0))
        XCTAssertEqual(m.coordinate(of: 1), .init(tensor: 1, data: 0, pipeline: 0))
        XCTAssertEqual(m.coordinate(of: 2), .init(tensor: 0, data: 1, pipeline: 0))
        XCTAssertEqual(m.coordinate(of: 9), .init(tensor: 1, data: 0, pipeline: 1))
        for r in 0..<16 { XCTAssertEqual(m.rank(at: m.coordinate(of: r)), r) }
        XCTAssertEqual(m.group(of: 5, .tensor), [4, 5])
        XCTAssertEqual(m.group(of: 5, .data), [1, 3, 5, 7])
        XCTAssertEqual(m.group(of: 5, .pipeline), [5, 13])
    }

    func testGroupsOfEachKindPartitionTheWorld() throws {
        let m = try DeviceMesh(world: 24, tensor: 2, pipeline: 3)
        for kind in DeviceMesh.GroupKind.allCases {
            var seen = Set<Int>()
            for r in 0..<24 where !seen.contains(r) {
                let g = m.group(of: r, kind)
                XCTAssertTrue(seen.isDisjoint(with: g), "\(kind) groups overlap")
                seen.formUnion(g)
            }
            XCTAssertEqual(seen.count, 24)
        }
        XCTAssertEqual(m.group(of: 0, .data).count, 4)
        XCTAssertEqual(m.group(of: 0, .tensor).count, 2)
        XCTAssertEqual(m.group(of: 0, .pipeline).count, 3)
    }

    func testSizesThatDoNotDivideTheWorldAreRefusedWithTheNumbers() {
        XCTAssertThrowsError(try DeviceMesh(world: 6, tensor: 4)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("parallel.tensor = 4") && text.contains("multiple of 4"), text)
        }
        XCTAssertThrowsError(try DeviceMesh(world: 4, tensor: 0))
    }

    func testHybridShardGroupsAreConsecutiveDataRanksAndReplicasSpanThem() throws {
        let m = try DeviceMesh(world: 8)
        let colours = try (0..<8).map { try m.hybridGroups(of: $0, shardSize: 4) }
        XCTAssertEqual(colours.map(\.shard), [0, 0, 0, 0, 1, 1, 1, 1])
        XCTAssertEqual(colours.map(\.replica), [0, 1, 2, 3, 0, 1, 2, 3])
        XCTAssertThrowsError(try m.hybridGroups(of: 0, shardSize: 3))
    }
}
