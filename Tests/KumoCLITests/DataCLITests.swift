import Foundation
import XCTest

/// End-to-end tests of `kumo data` and of training on prepared datasets with release levels.
final class DataCLITests: XCTestCase {
    private let tiny = [
        "--set", "model.preset=tiny", "--set", "model.vocab_size=384", "--set", "train.seq_length=32",
        "--set", "train.micro_batch_size=2", "--set", "train.threads=1", "--set", "train.steps=3",
    ]

    /// Writes a JSONL corpus of `documents` (and the given extra raw lines) and returns its path.
    private func corpus(_ dir: String, _ name: String, _ documents: [String], extra: [String] = []) throws -> String {
        let lines = documents.map { text -> String in
            let data = try! JSONSerialization.data(withJSONObject: ["text": text])
            return String(decoding: data, as: UTF8.self)
        }
        let path = dir + "/" + name
        try (lines + extra).map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func prepare(_ input: String, _ output: String, level: String, _ more: [String] = []) throws -> (
        status: Int32, out: String, err: String
    ) {
        try KumoProcess.run(
            ["data", "prepare", "--input", input, "--tokenizer", "byte", "--output", output, "--level", level] + more)
    }

    private func metadata(_ prefix: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: prefix + ".meta.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private let documents = (0..<40).map { "文書 \($0): the quick brown fox jumps over the lazy dog \($0 * 37 % 101)." }

    func testAnInterruptedPrepareRemovesItsTemporaryFilesAndALaterOneRemovesStaleOnes() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let fifo = dir + "/in.jsonl"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let p = try KumoProcess.start(
            ["data", "prepare", "--input", fifo, "--tokenizer", "byte", "--output", dir + "/ds", "--level", "L2"],
            stderrPath: dir + "/err")
        // Opening the FIFO waits for the reader; the input stays open, so the prepare waits for more.
        let writer = try XCTUnwrap(FileHandle(forWritingAtPath: fifo))
        writer.write(Data("{\"text\": \"a document\"}\n".utf8))
        let temporary = dir + "/ds.bin.tmp-\(p.processIdentifier)"
        wait(for: "the temporary dataset file") { FileManager.default.fileExists(atPath: temporary) }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        try writer.close()
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["err", "in.jsonl"])
        // A prepare killed outright (SIGKILL) leaves its files: the next prepare at that prefix removes them.
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        for name in ["ds.bin.tmp-\(dead.processIdentifier)", "ds.idx.tmp-\(dead.processIdentifier)"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data([1])))
        }
        let input = try corpus(dir, "a.jsonl", documents)
        XCTAssertEqual(try prepare(input, dir + "/ds", level: "L2").status, 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(left, [], "stale temporary files stayed")
    }

    func testPrepareWritesTheDatasetAndMetadataAndReportsEverySkip() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let input = try corpus(dir, "a.jsonl", documents, extra: ["not json", "{\"body\": 1}", "{\"text\": \"\"}"])
        let r = try prepare(input, dir + "/ds", level: "L2")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("43 records read, 40 documents kept, 3 skipped"), r.out)
        XCTAssertTrue(r.out.contains("a.jsonl:41: invalid JSON"), r.out)
        XCTAssertTrue(r.out.contains("tokens/s") && r.out.contains("peak memory"), r.out)
        let meta = try metadata(dir + "/ds")
        let tokens = documents.reduce(0) { $0 + $1.utf8.count + 1 }
        XCTAssertEqual(meta["level"] as? String, "L2")
        XCTAssertEqual(meta["documents"] as? Int, 40)
        XCTAssertEqual(meta["tokens"] as? Int, tokens)
        XCTAssertEqual(meta["dtype"] as? String, "uint16")
        XCTAssertEqual(meta["eod"] as? Int, 256)
        let bin = try Data(contentsOf: URL(fileURLWithPath: dir + "/ds.bin"))
        XCTAssertEqual(bin.count, tokens * 2)
        // The first document's bytes, then the end-of-document id, as little-endian uint16.
        let first = Array(documents[0].utf8).map { UInt16($0) } + [256]
        let stored = (0..<first.count).map { UInt16(bin[2 * $0]) | UInt16(bin[2 * $0 + 1]) << 8 }
        XCTAssertEqual(stored, first)
        let info = try KumoProcess.run(["data", "info", dir + "/ds"])
        XCTAssertEqual(info.status, 0, info.err)
        XCTAssertTrue(info.out.contains("documents: 40") && info.out.contains("level: L2"), info.out)
    }

    func testOneAndTwoThreadsWriteIdenticalDatasets() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let many = (0..<3000).map { "document \($0) " + String(repeating: "日本語 and English ", count: $0 % 17) }
        let input = try corpus(dir, "a.jsonl", many)
        XCTAssertEqual(try prepare(input, dir + "/one", level: "L1", ["--threads", "1"]).status, 0)
        XCTAssertEqual(try prepare(input, dir + "/two", level: "L1", ["--threads", "2"]).status, 0)
        for ext in [".bin", ".idx"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/one" + ext))
            let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/two" + ext))
            XCTAssertEqual(a, b, "\(ext) differs between 1 and 2 threads")
        }
    }

    func testBadInputsFailWithAMessageAndLeaveNothingBehind() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let input = try corpus(dir, "a.jsonl", documents, extra: ["{\"content\": \"x\"}"])
        let strict = try prepare(input, dir + "/strict", level: "L2", ["--strict"])
        XCTAssertNotEqual(strict.status, 0)
        XCTAssertTrue(strict.err.contains("a.jsonl:41: missing text field"), strict.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/strict.bin"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/strict.idx"))
        let level = try prepare(input, dir + "/x", level: "L9")
        XCTAssertNotEqual(level.status, 0)
        XCTAssertTrue(level.err.contains("L3 (train only)"), level.err)
        let lz = try prepare(input, dir + "/x", level: "LZ")
        XCTAssertNotEqual(lz.status, 0)
        XCTAssertTrue(lz.err.contains("no use"), lz.err)
        XCTAssertEqual(try prepare(input, dir + "/ds", level: "L2").status, 0)
        let again = try prepare(input, dir + "/ds", level: "L2")
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.err.contains("--force"), again.err)
        XCTAssertEqual(try prepare(input, dir + "/ds", level: "L2", ["--force"]).status, 0)
        let missing = try prepare(dir + "/nothing.jsonl", dir + "/y", level: "L2")
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.err.contains("nothing.jsonl"), missing.err)
    }

    func testSampleAndSearchShowTextOnlyFromL1AndL2Data() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let input = try corpus(dir, "a.jsonl", documents)
        for level in ["L2", "L3", "LX"] {
            XCTAssertEqual(try prepare(input, dir + "/" + level, level: level).status, 0)
        }
        let search = try KumoProcess.run(["data", "search", dir + "/L2", "--query", "文書 17:"])
        XCTAssertEqual(search.status, 0, search.err)
        XCTAssertTrue(search.out.contains("[文書 17:]") && search.out.contains("1 match"), search.out)
        let sample = try KumoProcess.run(["data", "sample", dir + "/L2", "--count", "2"])
        XCTAssertEqual(sample.status, 0, sample.err)
        XCTAssertTrue(sample.out.contains("quick brown fox"), sample.out)
        for level in ["L3", "LX"] {
            for command in [["sample", dir + "/" + level], ["search", dir + "/" + level, "--query", "fox"]] {
                let r = try KumoProcess.run(["data"] + command)
                XCTAssertNotEqual(r.status, 0, "\(command) showed \(level) text")
                XCTAssertTrue(r.err.contains("release level \(level)") && r.err.contains("may not be shown"), r.err)
                XCTAssertFalse(r.out.contains("fox"), r.out)
            }
        }
    }

    func testTrainingOnEvaluationOnlyOrNoUseDataIsRefused() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let input = try corpus(dir, "a.jsonl", documents)
        XCTAssertEqual(try prepare(input, dir + "/train", level: "L1").status, 0)
        XCTAssertEqual(try prepare(input, dir + "/eval", level: "LX").status, 0)
        // LZ data cannot be prepared; a dataset relabelled LZ by hand is refused all the same.
        XCTAssertEqual(try prepare(input, dir + "/nouse", level: "L1").status, 0)
        let meta = try String(contentsOfFile: dir + "/nouse.meta.json", encoding: .utf8)
        try meta.replacingOccurrences(of: "\"L1\"", with: "\"LZ\"").write(
            toFile: dir + "/nouse.meta.json", atomically: true, encoding: .utf8)
        for (prefix, level) in [("eval", "LX"), ("nouse", "LZ")] {
            let sources =
                "data.sources=[{prefix = \"\(dir)/train\", weight = 0.5}, {prefix = \"\(dir)/\(prefix)\", weight = 0.5}]"
            let r = try KumoProcess.run(["train", "--set", sources, "--run-dir", dir + "/run-" + prefix] + tiny)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.err.contains("\(dir)/\(prefix) has release level \(level)"), r.err)
            XCTAssertTrue(r.err.contains("training on it is not allowed"), r.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run-" + prefix + "/metrics.jsonl"))
        }
        let unlabelled = try KumoProcess.run(["train", "--set", "data.sources=[{prefix = \"\(dir)/none\"}]"] + tiny)
        XCTAssertNotEqual(unlabelled.status, 0)
        XCTAssertTrue(unlabelled.err.contains("none.meta.json is missing"), unlabelled.err)
    }

    func testTrainingOnABlendRecordsTheSourcesAndLevelsInTheRunDirectory() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let ja = try corpus(dir, "ja.jsonl", documents)
        let en = try corpus(dir, "en.jsonl", documents.map { $0.uppercased() + " " + $0 })
        XCTAssertEqual(try prepare(ja, dir + "/ja", level: "L1").status, 0)
        XCTAssertEqual(try prepare(en, dir + "/en", level: "L3").status, 0)
        let sources = "data.sources=[{prefix = \"\(dir)/ja\", weight = 0.7}, {prefix = \"\(dir)/en\", weight = 0.3}]"
        let r = try KumoProcess.run(["train", "--set", sources, "--run-dir", dir + "/run"] + tiny)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("(L1, 70.0%") && r.err.contains("(L3, 30.0%"), r.err)
        let recorded = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run/data_sources.json")))
                as? [[String: Any]])
        XCTAssertEqual(recorded.map { $0["level"] as? String }, ["L1", "L3"])
        XCTAssertEqual(recorded.map { $0["prefix"] as? String }, [dir + "/ja", dir + "/en"])
        let log = try String(contentsOfFile: dir + "/run/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("level L3 (train only)"), log)
        let config = try String(contentsOfFile: dir + "/run/config.toml", encoding: .utf8)
        XCTAssertTrue(config.contains("sources = [{prefix = \"\(dir)/ja\", weight = 0.7}"), config)
    }

    /// The `loss` values of every metrics line, as written.
    private func losses(_ run: String) throws -> [String] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            String(line.range(of: "\"loss\":").map { line[$0.upperBound...].prefix { $0 != "," } } ?? "")
        }
    }

    func testTrainingOnABlendResumesAtTheExactSample() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        XCTAssertEqual(try prepare(try corpus(dir, "ja.jsonl", documents), dir + "/ja", level: "L1").status, 0)
        let en = try corpus(dir, "en.jsonl", documents.map { $0.uppercased() })
        XCTAssertEqual(try prepare(en, dir + "/en", level: "L2").status, 0)
        let blend = [
            "--set", "data.sources=[{prefix = \"\(dir)/ja\", weight = 0.6}, {prefix = \"\(dir)/en\", weight = 0.4}]",
            "--set", "train.steps=8", "--set", "train.global_batch_size=4",
        ]
        let whole = try KumoProcess.run(["train", "--run-dir", dir + "/whole"] + tiny + blend)
        XCTAssertEqual(whole.status, 0, whole.err)
        // The same run killed inside its step-6 checkpoint write, then resumed from step 4.
        let split = dir + "/split"
        let p = try KumoProcess.start(
            ["train", "--run-dir", split, "--set", "checkpoint.every=2"] + tiny + blend,
            environment: ["KUMO_DEBUG_CHECKPOINT_PAUSE": "6:120"], stderrPath: dir + "/split.err")
        let deadline = Date().addingTimeInterval(120)
        while !((try? String(contentsOfFile: dir + "/split.err", encoding: .utf8)) ?? "").contains(
            "checkpoint: pausing"),
            Date() < deadline
        {
            usleep(5000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let resumed = try KumoProcess.run(["train", "--resume", "latest", "--run-dir", split])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.err.contains("step-0000004"), resumed.err)
        XCTAssertEqual(try losses(dir + "/whole").count, 8)
        XCTAssertEqual(try losses(dir + "/split"), try losses(dir + "/whole"))
    }

    /// `data.reset_attention = true` on a prepared dataset of short documents restarts positions and
    /// attention at every end-of-document token (other losses than without); with synthetic tokens,
    /// which have no documents, the run is refused before it starts.
    func testResetAttentionTrainsOnPreparedDocumentsAndIsRefusedForSyntheticTokens() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let input = try corpus(
            dir, "short.jsonl", (0..<60).map { "doc \($0) " + String(repeating: "z", count: $0 % 5) })
        XCTAssertEqual(try prepare(input, dir + "/short", level: "L1").status, 0)
        let blend = ["--set", "data.sources=[{prefix = \"\(dir)/short\"}]"]
        let reset = try KumoProcess.run(
            ["train", "--run-dir", dir + "/reset", "--set", "data.reset_attention=true"] + tiny + blend)
        XCTAssertEqual(reset.status, 0, reset.err)
        let plain = try KumoProcess.run(["train", "--run-dir", dir + "/plain"] + tiny + blend)
        XCTAssertEqual(plain.status, 0, plain.err)
        let (withReset, without) = (try losses(dir + "/reset"), try losses(dir + "/plain"))
        XCTAssertEqual(withReset.count, 3)
        for (x, y) in zip(withReset, without) { XCTAssertNotEqual(x, y, "the reset changes every step's loss") }
        let synthetic = try KumoProcess.run(
            [
                "train", "--run-dir", dir + "/synthetic", "--set", "data.synthetic=true", "--set",
                "data.reset_attention=true",
            ]
                + tiny)
        XCTAssertNotEqual(synthetic.status, 0)
        XCTAssertTrue(synthetic.err.contains("data.reset_attention needs documents"), synthetic.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/synthetic/metrics.jsonl"))
    }

    func testEveryDataCommandHasHelp() throws {
        for command in ["prepare", "label", "info", "sample", "search"] {
            let r = try KumoProcess.run(["data", command, "--help"])
            XCTAssertEqual(r.status, 0, command)
            XCTAssertTrue(r.out.contains("USAGE"), "\(command): \(r.out)")
        }
    }
}
