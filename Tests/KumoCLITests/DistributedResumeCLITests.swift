import Foundation
import XCTest

/// Checkpoints of several ranks under mpirun (oversubscribed): a 2-rank ZeRO-2 run killed with
/// SIGKILL during a step or inside a checkpoint write resumes with bit-identical losses, and a
/// damaged shard of one rank is detected naming the file.
final class DistributedResumeCLITests: XCTestCase {
    private let args = [
        "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
        "--set", "train.micro_batch_size=2", "--set", "train.global_batch_size=8", "--set", "train.threads=1",
        "--set", "train.steps=12", "--set", "parallel.zero_stage=2", "--set", "checkpoint.every=3",
        "--set", "checkpoint.keep=2",
    ]
    private let ranks = 2

    /// The losses of an uninterrupted 2-rank ZeRO-2 run (its run directory is `dir`).
    private func uninterrupted(_ dir: String) throws -> [String] {
        let r = try KumoProcess.runMPI(ranks: ranks, args + ["--run-dir", dir])
        XCTAssertEqual(r.status, 0, r.err)
        let reference = try writtenLosses(dir)
        XCTAssertEqual(reference.count, 12)
        return reference
    }

    /// Starts the run; the pid of every rank once all have announced themselves.
    private func start(_ dir: String, _ extra: [String] = [], environment: [String: String] = [:]) throws
        -> (KumoProcess.Launched, [Int32])
    {
        let job = try KumoProcess.startMPI(
            KumoProcess.mpirunArgs(ranks: ranks) + args + extra + ["--run-dir", dir], environment: environment)
        let pids = try (0..<ranks).map { rank in
            try XCTUnwrap(
                job.waitForError(matching: "kumo: rank \(rank) of \(ranks), pid ([0-9]+)", timeout: 120).flatMap {
                    Int32($0)
                }, "rank \(rank) did not start: \(job.standardError)")
        }
        return (job, pids)
    }

    /// SIGKILLs one rank; mpirun then ends the job.
    private func kill(_ pid: Int32, of job: KumoProcess.Launched) {
        XCTAssertEqual(Foundation.kill(pid, SIGKILL), 0, "the rank had already exited")
        let r = job.finish()
        XCTAssertNotEqual(r.status, 0, "the job finished despite the kill: \(r.err)")
    }

    private func resume(_ spec: String, _ dir: String) throws -> (status: Int32, out: String, err: String) {
        try KumoProcess.runMPI(ranks: ranks, ["train", "--resume", spec, "--run-dir", dir])
    }

    func testTwoRankZeRO2RunKilledDuringAStepResumesWithBitIdenticalLosses() throws {
        let base = try KumoProcess.temporaryDirectory(for: self)
        let reference = try uninterrupted(base + "/reference")
        var rng = SplitMix(seed: 62)
        let dir = base + "/run"
        let (job, pids) = try start(dir)
        let after = 2 + Int(rng.next() % 8)
        wait(for: "\(after) metrics lines") { ((try? writtenLosses(dir)) ?? []).count >= after }
        usleep(UInt32(rng.next() % 40_000))
        let victim = Int(rng.next() % UInt64(ranks))
        kill(pids[victim], of: job)
        let killedAt = try writtenLosses(dir).count
        let r = try resume("latest", dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("resume: using") || r.err.contains("starting at step 0"), r.err)
        XCTAssertEqual(try writtenLosses(dir), reference, "rank \(victim) killed after \(killedAt) steps; \(r.err)")
    }

    func testTwoRankZeRO2RunKilledInsideACheckpointWriteResumesFromThePreviousOneWithBitIdenticalLosses() throws {
        let base = try KumoProcess.temporaryDirectory(for: self)
        let reference = try uninterrupted(base + "/reference")
        let dir = base + "/run"
        let (job, pids) = try start(dir, environment: ["KUMO_DEBUG_CHECKPOINT_PAUSE": "6:120"])
        XCTAssertNotNil(
            job.waitForError(matching: "checkpoint: pausing", timeout: 120), "no paused write: \(job.standardError)")
        kill(pids[0], of: job)
        let checkpoints = dir + "/checkpoints"
        // Both ranks hold a ZeRO-2 shard of the moments, so both were writing a file.
        for rank in 0..<ranks {
            let shard = checkpoints + String(format: "/.tmp-step-0000006/rank-%05d.bin", rank)
            XCTAssertTrue(FileManager.default.fileExists(atPath: shard), shard)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoints + "/step-0000006"))
        let r = try resume("latest", dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("resume: using \(checkpoints)/step-0000003"), r.err)
        XCTAssertEqual(try writtenLosses(dir), reference, r.err)
        let left = try FileManager.default.contentsOfDirectory(atPath: checkpoints).sorted()
        XCTAssertEqual(left, ["step-0000009", "step-0000012"])
    }

    func testASignalToOneRankStopsEveryRankAtTheSameStepWithACheckpoint() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let (job, pids) = try start(dir, ["--set", "train.steps=100000", "--set", "checkpoint.every=100000"])
        wait(for: "3 metrics lines") { ((try? writtenLosses(dir)) ?? []).count >= 3 }
        // Rank 1 writes no run directory: rank 0 learns of the stop from it and stops at the same step.
        XCTAssertEqual(Foundation.kill(pids[1], SIGTERM), 0)
        let r = job.finish()
        XCTAssertNotEqual(r.status, 0, r.err)
        let steps = try writtenLosses(dir).count
        XCTAssertTrue(r.err.contains("stopped by SIGTERM after step \(steps) of 100000: wrote checkpoint"), r.err)
        let resumed = try KumoProcess.runMPI(
            ranks: ranks, ["train", "--resume", "latest", "--run-dir", dir, "--set", "train.steps=\(steps + 1)"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(
            resumed.err.contains("resume: using \(dir)/checkpoints/" + String(format: "step-%07d", steps)), resumed.err)
        XCTAssertEqual(try writtenLosses(dir).count, steps + 1)
    }

    func testATruncatedShardOfOneRankIsRefusedNamingTheFileAndLatestSkipsIt() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let reference = try uninterrupted(dir)
        let newest = dir + "/checkpoints/step-0000012"
        let manifest = try String(contentsOfFile: newest + "/manifest.json", encoding: .utf8)
        XCTAssertTrue(manifest.contains("\"rank-00001.bin\""), manifest)
        XCTAssertTrue(manifest.contains("\"zero_stage\" : 2"), manifest)
        let shard = try FileHandle(forUpdating: URL(fileURLWithPath: newest + "/rank-00001.bin"))
        try shard.truncate(atOffset: 4096)
        try shard.close()
        let refused = try resume(newest, dir)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(
            refused.err.contains(newest + "/rank-00001.bin") && refused.err.contains("truncated"), refused.err)
        let r = try resume("latest", dir)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("resume: skipped \(newest)/rank-00001.bin"), r.err)
        XCTAssertTrue(r.err.contains("resume: using \(dir)/checkpoints/step-0000009"), r.err)
        XCTAssertEqual(try writtenLosses(dir), reference)
    }
}
