import Foundation
import XCTest

/// Runs are neither lost nor mixed: an existing run directory is refused without --resume or
/// --overwrite and a second writer while one trains; SIGINT/SIGTERM finish the step and write a
/// checkpoint; a shape change on resume is an error; outputs and eval files are checked before training.
final class RunSafetyCLITests: XCTestCase {
    private let args = [
        "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
        "--set", "train.micro_batch_size=2", "--set", "train.threads=1",
    ]

    private func run(_ extra: [String]) throws -> (status: Int32, out: String, err: String) {
        try KumoProcess.run(args + extra)
    }

    /// Starts a run of `steps` steps that checkpoints every `every` steps and waits for `lines` metrics lines.
    private func startLong(_ dir: String, lines: Int, _ extra: [String] = [], environment: [String: String] = [:])
        throws -> Process
    {
        let p = try KumoProcess.start(
            args + ["--set", "train.steps=100000", "--run-dir", dir] + extra, environment: environment,
            stderrPath: dir + ".err")
        wait(for: "\(lines) metrics lines") { ((try? writtenLosses(dir)) ?? []).count >= lines }
        return p
    }

    private func stderr(_ dir: String) -> String {
        (try? String(contentsOfFile: dir + ".err", encoding: .utf8)) ?? ""
    }

    func testAnExistingRunDirectoryIsRefusedUnlessResumeOrOverwrite() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        XCTAssertEqual(try run(["--set", "train.steps=3", "--set", "checkpoint.every=3", "--run-dir", dir]).status, 0)
        let refused = try run(["--set", "train.steps=2", "--run-dir", dir])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.err.contains("is not empty") && refused.err.contains("--resume latest"), refused.err)
        XCTAssertEqual(try writtenLosses(dir).count, 3, "the refused run wrote metrics")
        let again = try run(["--set", "train.steps=2", "--run-dir", dir, "--overwrite"])
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertEqual(try writtenLosses(dir).count, 2)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints")
        XCTAssertEqual(left, [], "the old run's checkpoints survived --overwrite")
    }

    func testSIGINTFinishesTheStepWritesACheckpointAndTheRunResumesForMoreSteps() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let p = try startLong(dir, lines: 3, ["--set", "checkpoint.every=100000"])
        let second = try run(["--resume", "latest", "--run-dir", dir])
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.err.contains("in use by another kumo train (pid \(p.processIdentifier))"), second.err)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, stderr(dir))
        XCTAssertEqual(p.terminationStatus, 130, stderr(dir))
        let steps = try writtenLosses(dir).count
        let checkpoint = dir + "/checkpoints/" + String(format: "step-%07d", steps)
        XCTAssertTrue(stderr(dir).contains("stopped by SIGINT after step \(steps) of 100000"), stderr(dir))
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint + "/COMPLETE"), stderr(dir))
        let log = try String(contentsOfFile: dir + "/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("stopped by SIGINT after step \(steps)"), log)
        let resumed = try run(["--resume", "latest", "--run-dir", dir, "--set", "train.steps=\(steps + 2)"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.err.contains("resume: using \(checkpoint)"), resumed.err)
        XCTAssertTrue(
            resumed.err.contains(
                "learning-rate schedule recomputed: cosine decay until step \(steps + 2) instead of "
                    + "100000"), resumed.err)
        XCTAssertEqual(try writtenLosses(dir).count, steps + 2)
    }

    func testASecondSignalExitsAtOnce() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        let p = try startLong(
            dir, lines: 1, ["--set", "checkpoint.every=4"], environment: ["KUMO_DEBUG_CHECKPOINT_PAUSE": "4:120"])
        wait(for: "the paused checkpoint write") { stderr(dir).contains("checkpoint: pausing") }
        let t0 = Date()
        kill(p.processIdentifier, SIGTERM)
        wait(for: "the first signal's message") { stderr(dir).contains("SIGTERM received") }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(t0)
        print("exited \(seconds) s after the first signal, inside a checkpoint write paused for 120 s")
        XCTAssertLessThan(seconds, 60, stderr(dir))
        XCTAssertEqual(p.terminationStatus, 143, stderr(dir))
        XCTAssertTrue(stderr(dir).contains("exiting at once"), stderr(dir))
    }

    func testResumeLatestWithAnotherModelShapeIsAnErrorNamingTheKeys() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        XCTAssertEqual(try run(["--set", "train.steps=3", "--set", "checkpoint.every=3", "--run-dir", dir]).status, 0)
        let r = try KumoProcess.run(
            ["train", "--resume", "latest", "--run-dir", dir, "--set", "model.num_hidden_layers=3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("model.num_hidden_layers = 4 in the checkpoint, 3 in this run"), r.err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints"), ["step-0000003"])
    }

    func testACheckpointThatFailsOnAFullDiskRemovesItsTemporaryDirectory() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self) + "/run"
        // File size limit 64 KiB (SIGXFSZ ignored): metrics and logs fit, a checkpoint's shard does not.
        let command = "trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\""
        let p = try KumoProcess.Launched(
            executable: "/bin/bash",
            ["-c", command, KumoProcess.binary] + args + [
                "--set", "train.steps=4", "--set", "checkpoint.every=2", "--run-dir", dir,
            ])
        let r = p.finish()
        XCTAssertNotEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("write failed"), r.err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints"), [], r.err)
    }

    func testOutputsAndEvaluationFilesAreCheckedBeforeTraining() throws {
        let base = try KumoProcess.temporaryDirectory(for: self)
        let missing = base + "/no-such-dir/params.bin"
        let dump = try run(["--set", "train.steps=2", "--run-dir", base + "/a", "--dump-params", missing])
        XCTAssertNotEqual(dump.status, 0)
        XCTAssertTrue(dump.err.contains("--dump-params \(missing)") && dump.err.contains("does not exist"), dump.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/a/metrics.jsonl"), "it trained first")
        let eval = ["--set", "eval.interval=1", "--set", "eval.tokenizer=byte", "--set", "train.steps=2"]
        let jgl = try run(
            eval + ["--set", "eval.tasks=[\"jnli\"]", "--set", "eval.data_dir=\(base)", "--run-dir", base + "/b"])
        XCTAssertNotEqual(jgl.status, 0)
        XCTAssertTrue(jgl.err.contains("eval.data_dir") && jgl.err.contains("--data-dir"), jgl.err)
        XCTAssertTrue(jgl.err.contains("jnli-v1.3/valid-v1.3.json is missing"), jgl.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/b/metrics.jsonl"), "it trained first")
        let corpus = try run(
            eval + [
                "--set", "eval.tasks=[\"perplexity\"]", "--set", "eval.corpus=\(base)/none.jsonl", "--run-dir",
                base + "/c",
            ])
        XCTAssertNotEqual(corpus.status, 0)
        XCTAssertTrue(corpus.err.contains("eval.corpus = \"\(base)/none.jsonl\""), corpus.err)
        try "{\"text\": \"abc\"}\n".write(toFile: base + "/in.jsonl", atomically: true, encoding: .utf8)
        let tokenizer = try KumoProcess.run([
            "tokenizer", "train", "--input", base + "/in.jsonl", "--output", base + "/no-such-dir/tok", "--vocab-size",
            "300",
        ])
        XCTAssertNotEqual(tokenizer.status, 0)
        XCTAssertTrue(tokenizer.err.contains("--output") && tokenizer.err.contains("does not exist"), tokenizer.err)
        XCTAssertFalse(tokenizer.out.contains("read:"), "it read the corpus first: \(tokenizer.out)")
    }
}
