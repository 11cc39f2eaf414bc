import Foundation
import XCTest

@testable import KumoData

/// Token ids outside the vocabulary (a corrupt `.bin`, a dataset made with another tokenizer) are
/// found when a dataset is opened or read, naming the file and the document, instead of trapping in
/// training's embedding lookup (issue 16).
final class DatasetVocabularyTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-vocab-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Documents 0 (two sequences), 1 (empty), 2 (one sequence) and 3 (two sequences, the second holding
    /// `bad` at its token 2): sequences 0, 1 | – | 2 | 3, 4.
    private func dataset(bad: Int32) throws -> IndexedDataset {
        let prefix = try temporaryDirectory() + "/d"
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .int32)
        try writer.add(sequence: [1, 2, 3])
        try writer.add(document: [4, 5])
        writer.endDocument()
        try writer.add(document: [6, 7, 8, 9])
        try writer.add(sequence: [10, 11])
        try writer.add(document: [12, 13, bad, 14])
        try writer.finish()
        return try IndexedDataset(prefix: prefix)
    }

    func testDocumentOfEachSequenceSkipsEmptyDocuments() throws {
        let d = try dataset(bad: 15)
        XCTAssertEqual((0..<d.sequenceCount).map { d.document(ofSequence: $0) }, [0, 0, 2, 3, 3])
        XCTAssertEqual(d.tokenIdRange(), 1...15)
        XCTAssertNil(d.firstTokenOutside(vocabSize: 16).map { "\($0)" })
        let labeled = try DatasetMetadata(labeling: d, level: .l1, tokenizer: ByteTokenizer(), tokenizerName: "byte")
        XCTAssertEqual(labeled.maxTokenId, 15)
    }

    func testWindowsReadingAnIdOutsideTheVocabularyThrowNamingFileAndDocument() throws {
        let d = try dataset(bad: 500)
        let gpt = try GPTDataset(dataset: d, seqLength: 4, numSamples: 10, seed: 1, vocabSize: 100)
        var window = [Int32](repeating: 0, count: 5)
        var failures: [String] = []
        for i in 0..<10 {
            do {
                try window.withUnsafeMutableBufferPointer { try gpt.sample(i, into: $0) }
            } catch {
                failures.append("\(error)")
            }
        }
        XCTAssertFalse(failures.isEmpty, "no window read the bad token")
        for f in failures {
            XCTAssertTrue(f.contains("\(d.prefix).bin: document 3 (sequence 4) holds token id 500 at token 2"), f)
        }
        XCTAssertTrue(failures.count < 10, "windows without the bad token are served")
    }

    func testRecordedMaxTokenIdIsCheckedWhenTheDatasetIsOpened() throws {
        let d = try dataset(bad: 500)
        XCTAssertThrowsError(
            try DatasetMetadata(labeling: d, level: .l1, tokenizer: ByteTokenizer(), tokenizerName: "byte"),
            "labeling checks every token")
        var meta = DatasetMetadata(
            level: .l1, tokenizer: "byte", vocabSize: 257, eod: 256, dtype: "int32", inputs: [], textField: "text",
            documents: d.documentCount, tokens: d.tokenCount, skipped: [:], maxTokenId: d.tokenIdRange()?.upperBound)
        XCTAssertEqual(meta.maxTokenId, 500)
        XCTAssertThrowsError(try meta.checkTokens(of: d, vocabSize: 257)) {
            XCTAssertTrue(
                "\($0)".contains("\(d.prefix).bin: holds token ids up to 500 (the first, 500, in document 3)"))
        }
        XCTAssertNoThrow(try meta.checkTokens(of: d, vocabSize: 501))
        meta.maxTokenId = nil  // metadata written before max_token_id: left to the windows' check
        XCTAssertNoThrow(try meta.checkTokens(of: d, vocabSize: 257))
    }

    func testPreparedMetadataRecordsTheMaxTokenIdAndAllSkippedInputIsAnError() throws {
        let dir = try temporaryDirectory()
        let good = dir + "/good.jsonl"
        try #"{"text": "ab"}\#n{"text": "~"}\#n"#.write(toFile: good, atomically: true, encoding: .utf8)
        let preparer = try DatasetPreparer(
            reader: try CorpusReader(paths: [good]), tokenizer: ByteTokenizer(), tokenizerName: "byte", level: .l1)
        let (meta, _) = try preparer.prepare(prefix: dir + "/good")
        XCTAssertEqual(meta.maxTokenId, 256, "the end-of-document id 256 is the largest")
        XCTAssertEqual(try DatasetMetadata.load(prefix: dir + "/good").maxTokenId, 256)

        let bad = dir + "/bad.jsonl"
        try #"{"body": "ab"}\#n"#.write(toFile: bad, atomically: true, encoding: .utf8)
        let skipping = try DatasetPreparer(
            reader: try CorpusReader(paths: [bad]), tokenizer: ByteTokenizer(), tokenizerName: "byte", level: .l1)
        XCTAssertThrowsError(try skipping.prepare(prefix: dir + "/bad")) {
            XCTAssertTrue("\($0)".contains("no document kept, nothing written to \(dir)/bad"), "\($0)")
            XCTAssertTrue("\($0)".contains("bad.jsonl:1"), "\($0)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("bad.") }
        XCTAssertEqual(left, ["bad.jsonl"], "only the input remains")
    }
}
