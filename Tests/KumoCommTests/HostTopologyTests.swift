import KumoComm
import XCTest

/// Ranks are renumbered host by host, so that consecutive mesh ranks (a tensor group) share a host
/// whatever order the launcher placed them in.
final class HostTopologyTests: XCTestCase {
    func testRoundRobinPlacementIsRenumberedHostByHost() throws {
        let t = HostTopology(hosts: ["a", "b", "a", "b"])
        XCTAssertTrue(t.spansHosts)
        XCTAssertEqual(t.hostOrder, ["a", "b"])
        XCTAssertEqual(t.meshRanks, [0, 2, 1, 3])
        XCTAssertEqual(t.hostsByMeshRank, ["a", "a", "b", "b"])
        XCTAssertEqual(t.groupsAcrossHosts(size: 2), [])
        XCTAssertEqual(t.groupsAcrossHosts(size: 4), [[0, 1, 2, 3]])
        let mesh = try DeviceMesh(world: 4, tensor: 2)
        XCTAssertEqual(
            t.lines(mesh: mesh),
            [
                "host a: world ranks 0,2 → mesh ranks 0 (tp 0, dp 0, pp 0), 1 (tp 1, dp 0, pp 0)",
                "host b: world ranks 1,3 → mesh ranks 2 (tp 0, dp 1, pp 0), 3 (tp 1, dp 1, pp 0)",
            ])
    }

    func testHostsKeepTheOrderOfTheirLowestRank() {
        let t = HostTopology(hosts: ["b", "a", "a", "c", "b", "c"])
        XCTAssertEqual(t.hostOrder, ["b", "a", "c"])
        XCTAssertEqual(t.meshRanks, [0, 2, 3, 4, 1, 5])
        XCTAssertEqual(t.meshRanks[0], 0, "world rank 0 stays rank 0: it owns the run directory")
    }

    func testUnevenHostsLeaveATensorGroupAcrossHosts() {
        let t = HostTopology(hosts: ["a", "a", "a", "b"])
        XCTAssertEqual(t.groupsAcrossHosts(size: 2), [[2, 3]])
        XCTAssertEqual(t.groupsAcrossHosts(size: 1), [])
    }

    func testOneHostKeepsTheWorldAsItIs() {
        let t = HostTopology(hosts: ["a", "a"])
        XCTAssertFalse(t.spansHosts)
        XCTAssertEqual(t.meshRanks, [0, 1])
        let world = LocalCommunicator()
        XCTAssertTrue(HostTopology(hosts: ["a"]).arrange(world) as AnyObject === world)
    }

    func testTheDebugHookNamesTheHostsOfEachRank() {
        let world = LocalCommunicator()
        XCTAssertEqual(HostTopology.discover(world, environment: ["KUMO_DEBUG_HOSTS": "x"]).hosts, ["x"])
        XCTAssertEqual(
            HostTopology.discover(world, environment: ["KUMO_DEBUG_HOSTS": ""]).hosts,
            [ProcessInfo.processInfo.hostName],
            "an empty list names no host")
        XCTAssertEqual(
            HostTopology.discover(world, environment: [:]).hosts, [ProcessInfo.processInfo.hostName])
    }
}
