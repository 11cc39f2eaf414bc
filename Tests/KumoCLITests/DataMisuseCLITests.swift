import Foundation
import XCTest

/// Datasets that cannot be trained on (issue 16): ids outside the vocabulary are refused naming the file
/// and the document, `kumo data info` shows the largest id, and a preparation that keeps no document fails.
final class DataMisuseCLITests: XCTestCase {
    /// A byte-tokenized dataset of 20 documents at `dir/ds`, whose document 7 then holds id 5000
    /// (written into the uint16 `.bin`, as corruption would); `recorded` keeps max_token_id in the metadata.
    private func corruptDataset(_ dir: String, recorded: Bool) throws -> String {
        let input = dir + "/in.jsonl"
        let lines = (0..<20).map { #"{"text": "document \#($0) says hello to the quick brown fox"}"# + "\n" }
        try lines.joined().write(toFile: input, atomically: true, encoding: .utf8)
        let prefix = dir + "/ds"
        let r = try KumoProcess.run([
            "data", "prepare", "--input", input, "--tokenizer", "byte", "--output", prefix, "--level", "L1",
        ])
        XCTAssertEqual(r.status, 0, r.err)
        let firstOfDocument7 = lines.prefix(7).reduce(0) { $0 + $1.utf8.count - 12 }  // text bytes + EOD
        var bin = try Data(contentsOf: URL(fileURLWithPath: prefix + ".bin"))
        bin[2 * (firstOfDocument7 + 3)] = 0x88
        bin[2 * (firstOfDocument7 + 3) + 1] = 0x13  // 5000, little-endian
        try bin.write(to: URL(fileURLWithPath: prefix + ".bin"))
        let metaURL = URL(fileURLWithPath: prefix + ".meta.json")
        var meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: metaURL)) as? [String: Any])
        XCTAssertEqual(meta["max_token_id"] as? Int, 256, "prepare records the largest id (the EOD)")
        meta["max_token_id"] = recorded ? 5000 : nil
        try JSONSerialization.data(withJSONObject: meta).write(to: metaURL)
        return prefix
    }

    private func train(_ prefix: String, _ dir: String) throws -> (status: Int32, out: String, err: String) {
        let config = dir + "/train.toml"
        try """
        [model]
        preset = "tiny"
        [data]
        sources = [{prefix = "\(prefix)"}]
        [train]
        seq_length = 32
        micro_batch_size = 2
        steps = 40
        threads = 1
        """.write(toFile: config, atomically: true, encoding: .utf8)
        return try KumoProcess.run(["train", "--config", config, "--run-dir", dir + "/run"])
    }

    func testIdsOutsideTheVocabularyAreRefusedNamingFileAndDocument() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let prefix = try corruptDataset(dir, recorded: false)
        let info = try KumoProcess.run(["data", "info", prefix])
        XCTAssertEqual(info.status, 0, info.err)
        XCTAssertTrue(info.out.contains("max token id 5000"), info.out)
        XCTAssertTrue(info.out.contains("document 7 holds token 5000, outside the vocabulary 0..<257"), info.out)
        // Without max_token_id in the metadata, the windows that read document 7 find it.
        let lazily = try train(prefix, dir)
        XCTAssertEqual(lazily.status, 1, lazily.err)
        XCTAssertTrue(lazily.err.contains("\(prefix).bin: document 7 (sequence 7) holds token id 5000"), lazily.err)

        let recordedDir = try KumoProcess.temporaryDirectory(for: self) + "/r"
        try FileManager.default.createDirectory(atPath: recordedDir, withIntermediateDirectories: true)
        let recorded = try corruptDataset(recordedDir, recorded: true)
        let atOpen = try train(recorded, recordedDir)
        XCTAssertEqual(atOpen.status, 1, atOpen.err)
        XCTAssertTrue(
            atOpen.err.contains("\(recorded).bin: holds token ids up to 5000 (the first, 5000, in document 7)"),
            atOpen.err)
        XCTAssertFalse(atOpen.err.contains("step 1/"), "refused before training: \(atOpen.err)")
    }

    func testPrepareThatKeepsNoDocumentExitsNonZero() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        try #"{"body": "no text field"}\#n"#.write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        let r = try KumoProcess.run([
            "data", "prepare", "--input", dir + "/in.jsonl", "--tokenizer", "byte", "--output", dir + "/ds", "--level",
            "L1",
        ])
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssertTrue(r.err.contains("no document kept") && r.err.contains("1 skipped"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/ds.bin"))
    }
}
