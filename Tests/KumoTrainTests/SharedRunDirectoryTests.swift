import KumoComm
import XCTest

@testable import KumoTrain

/// A run directory some hosts cannot see is refused at start-up, naming them.
final class SharedRunDirectoryTests: XCTestCase {
    func testRanksThatCannotSeeTheRunDirectoryAreNamedByHost() throws {
        let hosts = ["h1", "h1", "h2", "h2"]
        XCTAssertNil(SharedRunDirectory.refusal("/runs/a", visible: [true, true, true, true]) { hosts[$0] })
        let refusal = try XCTUnwrap(
            SharedRunDirectory.refusal("/runs/a", visible: [true, true, false, false]) { hosts[$0] })
        XCTAssertTrue(refusal.contains("/runs/a (made by rank 0 on h1) is not visible on h2 (ranks 2,3)"), refusal)
        XCTAssertTrue(refusal.contains("a file system all hosts share"), refusal)
    }

    func testOneRankSeesTheDirectoryItClaimed() throws {
        let dir = NSTemporaryDirectory() + "kumo-shared-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lock = try RunLock.claim(dir, use: .new)
        XCTAssertNoThrow(try SharedRunDirectory.check(lock.path, world: LocalCommunicator()) { _ in "here" })
        XCTAssertThrowsError(
            try SharedRunDirectory.check(dir + "/elsewhere", world: LocalCommunicator()) { _ in "here" })
    }
}
