import Foundation
import XCTest

/// `kumo train` as several ranks under mpirun (oversubscribed): equivalence with one rank,
/// counters, and failure behaviour.
final class DataParallelCLITests: XCTestCase {
    private let steps = TinyRun.steps
    private func tiny(micro: Int, global: Int = 8) -> [String] { TinyRun.args(micro: micro, global: global) }
    private func train(ranks: Int, _ args: [String]) throws -> TrainedRun { try trainRun(ranks: ranks, args) }

    func testTwoAndFourRanksMatchTheSingleRankLossAndParameters() throws {
        let one = try train(ranks: 1, tiny(micro: 2))
        assertEquivalent(try train(ranks: 2, tiny(micro: 2)), one, "2 ranks")
        assertEquivalent(try train(ranks: 4, tiny(micro: 2)), one, "4 ranks")
        // The runs differ: a different seed moves the loss far beyond the tolerance.
        let other = try train(ranks: 1, tiny(micro: 2) + ["--set", "train.seed=7"])
        XCTAssertGreaterThan(abs(other.losses[steps - 1] - one.losses[steps - 1]), 1e-3)
    }

    func testGradientAccumulationOnTwoRanksMatchesOneRank() throws {
        let one = try train(ranks: 1, tiny(micro: 4))
        let two = try train(ranks: 2, tiny(micro: 1))
        XCTAssertTrue(two.err.contains("4 accumulation steps per rank"), two.err)
        assertEquivalent(two, one, "2 ranks × 4 accumulation steps")
    }

    func testMetricsCountEveryGradientByteAllReducedOverTheDataParallelGroup() throws {
        let run = try train(ranks: 2, tiny(micro: 2))
        let buckets = try XCTUnwrap(
            run.err.components(separatedBy: "gradient buckets: ").dropFirst().first?.prefix { $0.isNumber })
        let perStepCalls = Double(Int(buckets)! + 2)  // the buckets, the token count and the loss
        let perStepBytes = Double(4 * run.params.count + 16)
        for (i, m) in run.metrics.enumerated() {
            XCTAssertEqual(m["comm.dp.allreduce.bytes"] as? Double, Double(i + 1) * perStepBytes, "step \(i + 1)")
            XCTAssertEqual(m["comm.dp.allreduce.calls"] as? Double, Double(i + 1) * perStepCalls, "step \(i + 1)")
            XCTAssertGreaterThan(m["comm.dp.allreduce.seconds"] as? Double ?? 0, 0)
        }
        let single = try train(ranks: 1, tiny(micro: 2) + ["--set", "train.steps=1"])
        XCTAssertTrue(single.metrics[0].keys.allSatisfy { !$0.hasPrefix("comm.") }, "\(single.metrics[0].keys)")
    }

    func testZeRO1MatchesSingleRankLossAndShardsOptimizerState() throws {
        let one = try train(ranks: 1, tiny(micro: 2))
        let p = one.params.count
        XCTAssertEqual(one.metrics.last?["memory.optimizer_bytes"] as? Double, Double(8 * p))
        for ranks in [2, 4] {
            let run = try train(ranks: ranks, tiny(micro: 2) + ["--set", "parallel.zero_stage=1"])
            assertEquivalent(run, one, "ZeRO-1, \(ranks) ranks")
            // Stage 1 per rank: 4P parameters + 4P gradients + 8P/N optimizer state (rank 0 holds ⌈P/N⌉).
            let shard = (p + ranks - 1) / ranks
            let last = try XCTUnwrap(run.metrics.last)
            XCTAssertEqual(last["memory.params_bytes"] as? Double, Double(4 * p))
            XCTAssertEqual(last["memory.grads_bytes"] as? Double, Double(4 * p))
            XCTAssertEqual(last["memory.optimizer_bytes"] as? Double, Double(8 * shard), "\(ranks) ranks")
            // Every step all-gathers the parameters: this rank contributes its shard.
            XCTAssertEqual(last["comm.dp.allgather.bytes"] as? Double, Double(steps * 4 * shard))
        }
    }

    func testRanksGivenDifferentConfigsAreRefusedNamingTheRank() throws {
        let args = ["train"] + tiny(micro: 2) + ["--run-dir", try KumoProcess.temporaryDirectory(for: self)]
        let mpmd =
            ["-np", "1", KumoProcess.binary] + args + [":", "-np", "1", KumoProcess.binary] + args + [
                "--set", "train.seed=99",
            ]
        let r = try KumoProcess.startMPI(mpmd).finish()
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("rank 1 runs a different resolved configuration than rank 0"), r.err)
    }

    /// Starts a long 2-rank run, waits for it to train, and returns it with rank 1's process id.
    private func startLongRun(_ extra: [String]) throws -> (KumoProcess.Launched, pid_t) {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let p = try KumoProcess.startMPI(
            KumoProcess.mpirunArgs(ranks: 2) + ["train"] + tiny(micro: 2) + extra + [
                "--set", "train.steps=100000", "--run-dir", dir,
            ])
        let pid = try XCTUnwrap(p.waitForError(matching: "rank 1 of 2, pid ([0-9]+)", timeout: 60), p.standardError)
        XCTAssertNotNil(p.waitForError(matching: "step 2/", timeout: 60), p.standardError)
        return (p, pid_t(pid)!)
    }

    func testKillingOneRankEndsTheJobNonZeroWithinSixtySecondsNamingTheRank() throws {
        let (p, pid) = try startLongRun([])
        let t0 = Date()
        kill(pid, SIGKILL)
        let r = p.finish()
        let seconds = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(seconds, 60, "the job took \(seconds) s to end")
        XCTAssertTrue(r.err.contains("rank 1 with PID"), r.err)
        print("job ended \(seconds) s after rank 1 was killed")
    }

    func testAStalledRankTripsTheCollectiveTimeoutNamingGroupOpAndStep() throws {
        let (p, pid) = try startLongRun(["--set", "parallel.comm_timeout_s=3"])
        let t0 = Date()
        kill(pid, SIGSTOP)
        let r = p.finish()
        let seconds = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(seconds, 60, "the job took \(seconds) s to end")
        // The stall is caught at the next collective the ranks share: the gradient all-reduce (dp) or
        // the per-step agreement on a stop signal (world).
        XCTAssertNotNil(
            r.err.range(
                of: "rank 0: collective timeout: group (dp|world), op allreduce, step [0-9]+",
                options: .regularExpression),
            r.err)
    }
}
