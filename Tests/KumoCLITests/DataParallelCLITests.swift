import Foundation
import XCTest

/// `kumo train` as several ranks under mpirun (oversubscribed): equivalence with one rank,
/// counters, and failure behaviour.
final class DataParallelCLITests: XCTestCase {
    private let steps = 20
    private func tiny(micro: Int, global: Int = 8) -> [String] {
        [
            "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
            "--set", "train.threads=1", "--set", "train.steps=\(steps)", "--set", "train.micro_batch_size=\(micro)",
            "--set", "train.global_batch_size=\(global)",
        ]
    }

    /// A finished run: its metrics lines, final parameters and standard error.
    private struct Run {
        var metrics: [[String: Any]]
        var params: [Float]
        var err: String
        var losses: [Double] { metrics.map { $0["loss"] as! Double } }
    }

    private func train(ranks: Int, _ args: [String]) throws -> Run {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let all = ["train"] + args + ["--run-dir", dir + "/run", "--dump-params", dir + "/params.bin"]
        let r = ranks == 1 ? try KumoProcess.run(all) : try KumoProcess.runMPI(ranks: ranks, all)
        XCTAssertEqual(r.status, 0, "\(ranks) ranks: \(r.err)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let metrics = try lines.map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/params.bin"))
        let params = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return Run(metrics: metrics, params: params, err: r.err)
    }

    /// Per-step loss within 1e-5 relative; final parameters within 1e-5 relative in the L2 norm,
    /// and no element more than 1e-4 apart. (Summing the same gradients in another order is all
    /// that differs; AdamW turns those last-bit differences into element moves of a fraction of
    /// the learning rate where a gradient is near zero: the one-rank run regrouped into other
    /// micro-batches moves single elements by about 5e-5 over 20 steps too.)
    private func assertEquivalent(_ run: Run, _ reference: Run, _ label: String) {
        XCTAssertEqual(run.losses.count, steps, label)
        let lossError = zip(run.losses, reference.losses).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(lossError, 1e-5, "\(label): max relative loss error \(lossError)")
        XCTAssertEqual(run.params.count, reference.params.count, label)
        let diffs = zip(run.params, reference.params).map { Double($0 - $1) }
        let relative =
            diffs.reduce(0) { $0 + $1 * $1 }.squareRoot()
            / reference.params.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let maxDiff = diffs.map(abs).max() ?? .infinity
        XCTAssertLessThanOrEqual(relative, 1e-5, "\(label): relative L2 parameter error \(relative)")
        XCTAssertLessThanOrEqual(maxDiff, 1e-4, "\(label): max parameter difference \(maxDiff)")
        print(
            "\(label): max relative loss error \(lossError), relative L2 parameter error \(relative), "
                + "max parameter difference \(maxDiff)")
    }

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
        XCTAssertNotNil(
            r.err.range(
                of: "rank 0: collective timeout: group dp, op allreduce, step [0-9]+", options: .regularExpression),
            r.err)
    }
}
