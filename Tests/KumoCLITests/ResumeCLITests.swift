import Foundation
import XCTest

/// `kumo train --resume`: runs killed with SIGKILL continue with bit-identical losses.
final class ResumeCLITests: XCTestCase {
    private let args = [
        "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
        "--set", "train.micro_batch_size=2", "--set", "train.threads=1", "--set", "train.steps=12",
        "--set", "checkpoint.every=3", "--set", "checkpoint.keep=2",
    ]

    private func uninterrupted() throws -> [String] {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let r = try KumoProcess.run(args + ["--run-dir", dir])
        XCTAssertEqual(r.status, 0, r.err)
        let reference = try writtenLosses(dir)
        XCTAssertEqual(reference.count, 12)
        return reference
    }

    private func kill(_ p: Process) {
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run ended before the kill")
    }

    private func resumeLatest(_ dir: String) throws -> String {
        let r = try KumoProcess.run(["train", "--resume", "latest", "--run-dir", dir])
        XCTAssertEqual(r.status, 0, r.err)
        return r.err
    }

    func testRunKilledDuringAStepResumesWithBitIdenticalLosses() throws {
        let reference = try uninterrupted()
        var rng = SplitMix(seed: 6)
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let p = try KumoProcess.start(args + ["--run-dir", dir], stderrPath: dir + ".err")
        let after = 2 + Int(rng.next() % 8)
        wait(for: "\(after) metrics lines") { ((try? writtenLosses(dir)) ?? []).count >= after }
        usleep(UInt32(rng.next() % 40_000))
        kill(p)
        let killedAt = try writtenLosses(dir).count
        let err = try resumeLatest(dir)
        XCTAssertTrue(err.contains("resume: using") || err.contains("starting at step 0"), err)
        XCTAssertEqual(try writtenLosses(dir), reference, "killed after \(killedAt) steps; \(err)")
    }

    func testRunKilledInsideACheckpointWriteResumesFromThePreviousOneWithBitIdenticalLosses() throws {
        let reference = try uninterrupted()
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let p = try KumoProcess.start(
            args + ["--run-dir", dir], environment: ["KUMO_DEBUG_CHECKPOINT_PAUSE": "6:120"], stderrPath: dir + ".err")
        wait(for: "the paused checkpoint write") {
            ((try? String(contentsOfFile: dir + ".err", encoding: .utf8)) ?? "").contains("checkpoint: pausing")
        }
        kill(p)
        let checkpoints = dir + "/checkpoints"
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoints + "/.tmp-step-0000006/rank-00000.bin"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoints + "/step-0000006"))
        let err = try resumeLatest(dir)
        XCTAssertTrue(err.contains("resume: using \(checkpoints)/step-0000003"), err)
        XCTAssertEqual(try writtenLosses(dir), reference, err)
        let left = try FileManager.default.contentsOfDirectory(atPath: checkpoints).sorted()
        XCTAssertEqual(left, ["step-0000009", "step-0000012"])
    }

    func testResumeLatestSkipsACorruptCheckpointAndAnExplicitCorruptOneIsRefused() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        XCTAssertEqual(try KumoProcess.run(args + ["--run-dir", dir]).status, 0)
        let reference = try writtenLosses(dir)
        let newest = dir + "/checkpoints/step-0000012"
        let shard = try FileHandle(forUpdating: URL(fileURLWithPath: newest + "/rank-00000.bin"))
        try shard.seek(toOffset: 5000)
        shard.write(Data([0xAB, 0xCD]))
        try shard.close()
        let refused = try KumoProcess.run(["train", "--resume", newest])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.err.contains(newest + "/rank-00000.bin") && refused.err.contains("CRC"), refused.err)
        let err = try resumeLatest(dir)
        XCTAssertTrue(err.contains("resume: skipped \(newest)/rank-00000.bin"), err)
        XCTAssertTrue(err.contains("resume: using \(dir)/checkpoints/step-0000009"), err)
        XCTAssertTrue(err.contains("resume: set aside \(dir)/checkpoints/abandoned-step-0000012"), err)
        XCTAssertEqual(try writtenLosses(dir), reference)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints").sorted()
        XCTAssertEqual(left, ["abandoned-step-0000012", "step-0000009", "step-0000012"])
    }
}

/// A seeded SplitMix64 generator for the kill moments.
struct SplitMix: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
