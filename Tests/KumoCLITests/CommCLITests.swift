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
}
