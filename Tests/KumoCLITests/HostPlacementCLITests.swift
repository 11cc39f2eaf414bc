import Foundation
import XCTest

/// Ranks placed round-robin over hosts (as `mpirun --map-by node` does) are renumbered host by host:
/// tensor groups stay inside a host and training equals one rank's. `KUMO_DEBUG_HOSTS` names the
/// host of each world rank, so one machine stands for two hosts.
final class HostPlacementCLITests: XCTestCase {
    private func train(ranks: Int, hosts: String, _ settings: [String]) throws -> (TrainedRun, String) {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let args =
            KumoProcess.mpirunArgs(ranks: ranks) + ["train"] + TinyRun.args(micro: 1, global: 4, steps: 8)
            + settings.flatMap { ["--set", $0] } + ["--run-dir", dir + "/run", "--dump-params", dir + "/params.bin"]
        let r = try KumoProcess.startMPI(args, environment: ["KUMO_DEBUG_HOSTS": hosts]).finish()
        XCTAssertEqual(r.status, 0, r.err)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/params.bin"))
        let run = TrainedRun(
            metrics: try metricsLines(dir + "/run"),
            params: bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, err: r.err)
        return (run, try String(contentsOfFile: dir + "/run/train.log", encoding: .utf8))
    }

    func testRoundRobinRanksKeepTensorGroupsInsideAHostAndMatchOneRank() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 1, global: 4, steps: 8))
        let (run, log) = try train(ranks: 4, hosts: "a,b,a,b", ["parallel.tensor=2"])
        XCTAssertTrue(
            log.contains("host a: world ranks 0,2 → mesh ranks 0 (tp 0, dp 0, pp 0), 1 (tp 1, dp 0, pp 0)"), log)
        XCTAssertTrue(
            log.contains("host b: world ranks 1,3 → mesh ranks 2 (tp 0, dp 1, pp 0), 3 (tp 1, dp 1, pp 0)"), log)
        XCTAssertFalse(log.contains("span hosts"), log)
        XCTAssertTrue(run.err.contains("kumo: rank 2 of 4 (launched as rank 1)"), run.err)
        XCTAssertTrue(run.err.contains("kumo: rank 1 of 4 (launched as rank 2)"), run.err)
        assertEquivalent(run, one, "dp=2 × tp=2 placed round-robin on 2 hosts")
    }

    func testATensorGroupThatCannotStayInAHostIsWarnedAbout() throws {
        let (_, log) = try train(ranks: 4, hosts: "a,a,a,b", ["parallel.tensor=2"])
        XCTAssertTrue(log.contains("warning: tensor groups of mesh ranks 2,3 span hosts"), log)
    }

    func testDataParallelAcrossHostsAllReducesInLevelsAndMatchesOneRank() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 1, global: 4, steps: 8))
        let (run, _) = try train(ranks: 4, hosts: "a,b,a,b", [])
        assertEquivalent(run, one, "dp=4 on 2 hosts, hierarchical")
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertGreaterThan(last["comm.intra_host.reducescatter.bytes"] as? Double ?? 0, 0, "\(last.keys.sorted())")
        XCTAssertGreaterThan(last["comm.inter_host.allreduce.bytes"] as? Double ?? 0, 0)
        XCTAssertGreaterThan(last["comm.intra_host.allgather.bytes"] as? Double ?? 0, 0)
        let (flat, _) = try train(ranks: 4, hosts: "a,b,a,b", ["parallel.hierarchical=false"])
        assertEquivalent(flat, one, "dp=4 on 2 hosts, flat")
        XCTAssertNil(flat.metrics.last?["comm.inter_host.allreduce.bytes"])
    }

    /// ZeRO's gradient reduce-scatter and parameter all-gather go in levels too: stage 2 (sharded
    /// gradients) and stage 3 (gathered parameters) on dp=4 over 2 hosts equal one rank.
    func testZeROAcrossHostsReduceScattersAndGathersInLevelsAndMatchesOneRank() throws {
        let one = try trainRun(ranks: 1, TinyRun.args(micro: 1, global: 4, steps: 8))
        for stage in [2, 3] {
            let (run, _) = try train(ranks: 4, hosts: "a,b,a,b", ["parallel.zero_stage=\(stage)"])
            assertEquivalent(run, one, "ZeRO-\(stage), dp=4 on 2 hosts, hierarchical")
            let last = try XCTUnwrap(run.metrics.last)
            for key in ["intra_host.reducescatter", "inter_host.reducescatter", "inter_host.allgather"] {
                XCTAssertGreaterThan(last["comm.\(key).bytes"] as? Double ?? 0, 0, "ZeRO-\(stage): \(key)")
            }
            XCTAssertNil(last["comm.dp.reducescatter.bytes"], "ZeRO-\(stage): the flat group reduce-scattered")
        }
    }
}
