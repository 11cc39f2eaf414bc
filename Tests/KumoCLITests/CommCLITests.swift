import XCTest

/// `kumo bench comm` checks every collective of the MPI communicator before timing it.
final class CommCLITests: XCTestCase {
    func testEveryCollectiveGivesTheExpectedValuesOnThreeRanks() throws {
        let r = try KumoProcess.runMPI(ranks: 3, ["bench", "comm", "--max-mib", "1", "--iterations", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("collective checks passed on 3 ranks"), r.err)
        let lines = r.out.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, r.out)
        for line in lines {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(object["ranks"] as? Int, 3)
            XCTAssertGreaterThan(object["busbw_gbps"] as? Double ?? 0, 0, String(line))
        }
    }

    /// Over ranks that span hosts the collectives are checked again in levels (`HierarchicalGroup`),
    /// with pieces of uneven lengths, and the levelled all-reduce is timed beside the flat one.
    func testCollectivesInLevelsOverHostsGiveTheExpectedValues() throws {
        for hosts in ["a,b,a,b", "a,b,c,a,b,c"] {
            let ranks = hosts.split(separator: ",").count
            let r = try KumoProcess.startMPI(
                KumoProcess.mpirunArgs(ranks: ranks) + ["bench", "comm", "--max-mib", "1", "--iterations", "1"],
                environment: ["KUMO_DEBUG_HOSTS": hosts]
            ).finish()
            XCTAssertEqual(r.status, 0, r.err)
            let hostCount = Set(hosts.split(separator: ",")).count
            XCTAssertTrue(
                r.err.contains(
                    "collective checks passed on \(ranks) ranks, flat and in levels over \(hostCount) hosts"),
                r.err)
            XCTAssertTrue(r.out.contains("\"op\":\"allreduce_hierarchical\""), r.out)
        }
    }
}
