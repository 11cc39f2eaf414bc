import Foundation
import KumoData
import XCTest

final class KumoDataTests: XCTestCase {
    func testByteTokenizerRoundTripsJapaneseAndEnglish() {
        let t = ByteTokenizer()
        let text = "京都は日本の古都です。Kyoto is an old capital."
        let ids = t.encode(text)
        XCTAssertEqual(ids.count, text.utf8.count)
        XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 256 })
        XCTAssertEqual(t.decode(ids + [t.eod]), text)
    }

    func testCorpusCountsSkippedRecordsByReason() throws {
        let dir = NSTemporaryDirectory() + "kumo-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let jsonl = """
            {"text": "一つ目"}
            {"body": "no text field"}
            not json
            {"text": ""}
            {"text": "second"}
            """
        try jsonl.write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        try "plain document".write(toFile: dir + "/sub/b.txt", atomically: true, encoding: .utf8)
        let corpus = try TextCorpus(paths: [dir])
        var docs: [String] = []
        let summary = try corpus.forEachDocument { docs.append($0) }
        XCTAssertEqual(docs, ["一つ目", "second", "plain document"])
        XCTAssertEqual(summary.files, 2)
        XCTAssertEqual(summary.documents, 3)
        XCTAssertEqual(summary.skippedMissingField, 1)
        XCTAssertEqual(summary.skippedInvalidJSON, 1)
        XCTAssertEqual(summary.skippedEmpty, 1)
        XCTAssertThrowsError(try TextCorpus(paths: [dir + "/missing"])) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }

    func testStreamsAreDeterministicPerSampleIndex() {
        func window(_ s: TokenStream, _ i: Int) -> [Int32] {
            var w = [Int32](repeating: -1, count: 9)
            w.withUnsafeMutableBufferPointer { s.sample(i, into: $0) }
            return w
        }
        let synthetic = SyntheticTokenStream(vocabSize: 50, seed: 3)
        XCTAssertEqual(window(synthetic, 5), window(synthetic, 5))
        XCTAssertNotEqual(window(synthetic, 5), window(synthetic, 6))
        XCTAssertTrue(window(synthetic, 1).allSatisfy { $0 >= 0 && $0 < 50 })
        let tokens = (0..<100).map { Int32($0) }
        let memory = InMemoryTokenStream(tokens: tokens, vocabSize: 100, seed: 3)
        let w = window(memory, 2)
        XCTAssertEqual(w, window(memory, 2))
        // A window is a contiguous slice of the corpus.
        XCTAssertEqual(w, Array(tokens[Int(w[0])..<Int(w[0]) + 9]))
    }
}
