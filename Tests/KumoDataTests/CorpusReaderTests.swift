import Foundation
import KumoData
import XCTest

/// The streaming corpus reader: formats, gzip, and every bad-input case counted with its location.
final class CorpusReaderTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-corpus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// gzip-compresses `data` with the system's gzip.
    private func gzip(_ data: Data, to path: String) throws {
        try data.write(to: URL(fileURLWithPath: path + ".raw"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "gzip -c '\(path).raw' > '\(path)' && rm '\(path).raw'"]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
    }

    private func read(_ reader: CorpusReader) throws -> ([CorpusDocument], CorpusSummary) {
        var docs: [CorpusDocument] = []
        let summary = try reader.forEachDocument { docs.append($0) }
        return (docs, summary)
    }

    func testEveryBadRecordIsCountedByReasonWithFileAndLine() throws {
        let dir = try temporaryDirectory()
        var bytes = Data(
            """
            {"text": "一つ目"}
            {"body": "no text field"}
            not json

            {"text": ""}
            {"text": 42}
            [1, 2]
            {"text": "second", "id": 7}

            """.utf8)
        bytes.append(contentsOf: [UInt8]("{\"text\": \"bad \u{7f}".utf8) + [0xFF, 0xFE] + [UInt8]("\"}\n".utf8))
        try bytes.write(to: URL(fileURLWithPath: dir + "/a.jsonl"))
        try "plain document\nsecond line".write(toFile: dir + "/sub/b.txt", atomically: true, encoding: .utf8)
        try "   \n".write(toFile: dir + "/sub/c.txt", atomically: true, encoding: .utf8)
        let (docs, summary) = try read(try CorpusReader(paths: [dir]))
        XCTAssertEqual(docs.map(\.text), ["一つ目", "second", "plain document\nsecond line"])
        XCTAssertEqual(docs.map(\.line), [1, 8, 1])
        XCTAssertEqual(summary.files, 3)
        XCTAssertEqual(summary.records, 11)
        XCTAssertEqual(summary.kept, 3)
        XCTAssertEqual(summary.skipped[.missingField], 2)
        XCTAssertEqual(summary.skipped[.invalidJSON], 2)
        XCTAssertEqual(summary.skipped[.blankLine], 1)
        XCTAssertEqual(summary.skipped[.emptyDocument], 2)
        XCTAssertEqual(summary.skipped[.invalidUTF8], 1)
        XCTAssertEqual(summary.skippedTotal + summary.kept, summary.records, "\(summary)")
        let located = summary.firstProblems.map { "\(($0.file as NSString).lastPathComponent):\($0.line) \($0.reason)" }
        XCTAssertEqual(
            located,
            [
                "a.jsonl:2 missingField", "a.jsonl:3 invalidJSON", "a.jsonl:4 blankLine", "a.jsonl:5 emptyDocument",
                "a.jsonl:6 missingField", "a.jsonl:7 invalidJSON", "a.jsonl:9 invalidUTF8", "c.txt:1 emptyDocument",
            ])
        XCTAssertTrue(summary.description.contains("2 missing text field"), summary.description)
    }

    func testStrictModeStopsAtTheFirstBadRecordNamingFileAndLine() throws {
        let dir = try temporaryDirectory()
        try "{\"text\": \"ok\"}\n{\"content\": \"x\"}\n".write(
            toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        let reader = try CorpusReader(paths: [dir + "/a.jsonl"], strict: true)
        var kept = 0
        XCTAssertThrowsError(try reader.forEachDocument { _ in kept += 1 }) { error in
            XCTAssertTrue("\(error)".contains("a.jsonl:2: missing text field"), "\(error)")
        }
        XCTAssertEqual(kept, 1)
    }

    func testConfigurableTextFieldAndGzipWithSeveralMembers() throws {
        let dir = try temporaryDirectory()
        let lines = (0..<3000).map { "{\"content\": \"文書 \($0) " + String(repeating: "あ", count: $0 % 50) + "\"}\n" }
        try gzip(Data(lines[..<1000].joined().utf8), to: dir + "/one.gz")
        try gzip(Data(lines[1000...].joined().utf8), to: dir + "/two.gz")
        // Two gzip members in one file, as `cat one.gz two.gz` makes.
        var joined = try Data(contentsOf: URL(fileURLWithPath: dir + "/one.gz"))
        joined.append(try Data(contentsOf: URL(fileURLWithPath: dir + "/two.gz")))
        try joined.write(to: URL(fileURLWithPath: dir + "/sub/corpus.jsonl.gz"))
        let (docs, summary) = try read(try CorpusReader(paths: [dir + "/sub"], textField: "content"))
        XCTAssertEqual(docs.count, 3000, "\(summary)")
        XCTAssertEqual(docs[2999].text, "文書 2999 " + String(repeating: "あ", count: 2999 % 50))
        XCTAssertEqual(docs[2999].line, 3000)
        XCTAssertEqual(summary.fileBytes, joined.count)
    }

    func testTruncatedGzipIsReportedWithFileAndLineAndTheRestIsKept() throws {
        let dir = try temporaryDirectory()
        let lines = (0..<20000).map { "{\"text\": \"document \($0) with some words \($0 * 7919 % 10007)\"}\n" }
        try gzip(Data(lines.joined().utf8), to: dir + "/a.jsonl.gz")
        let full = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.jsonl.gz"))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: dir + "/a.jsonl.gz"))
        try "{\"text\": \"after\"}\n".write(toFile: dir + "/b.jsonl", atomically: true, encoding: .utf8)
        let (docs, summary) = try read(try CorpusReader(paths: [dir]))
        XCTAssertEqual(summary.skipped[.truncatedFile], 1)
        let problem = try XCTUnwrap(summary.firstProblems.first)
        XCTAssertTrue(problem.file.hasSuffix("a.jsonl.gz"))
        XCTAssertEqual(problem.line, docs.count, "the truncated line follows the last complete one")
        XCTAssertGreaterThan(docs.count, 1000)
        XCTAssertLessThan(docs.count, 20000)
        XCTAssertEqual(docs.last?.text, "after")
        XCTAssertTrue(problem.description.contains("truncated"), problem.description)
        let strict = try CorpusReader(paths: [dir + "/a.jsonl.gz"], strict: true)
        XCTAssertThrowsError(try strict.forEachDocument { _ in }) { error in
            XCTAssertTrue("\(error)".contains("a.jsonl.gz:"), "\(error)")
        }
    }

    func testNotGzipDataIsReportedAsCorrupt() throws {
        let dir = try temporaryDirectory()
        try "{\"text\": \"plain, not gzip\"}\n".write(toFile: dir + "/a.jsonl.gz", atomically: true, encoding: .utf8)
        let (docs, summary) = try read(try CorpusReader(paths: [dir]))
        XCTAssertEqual(docs.count, 0)
        XCTAssertEqual(summary.skipped[.truncatedFile], 1)
        XCTAssertTrue(summary.firstProblems[0].detail.contains("corrupt gzip"), summary.firstProblems[0].detail)
    }

    func testOverlongDocumentsAreSkippedNotKept() throws {
        let dir = try temporaryDirectory()
        try ("{\"text\": \"" + String(repeating: "x", count: 200) + "\"}\n{\"text\": \"short\"}\n")
            .write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        try String(repeating: "long line\n", count: 50).write(toFile: dir + "/b.txt", atomically: true, encoding: .utf8)
        let (docs, summary) = try read(try CorpusReader(paths: [dir], maxDocumentBytes: 100))
        XCTAssertEqual(docs.map(\.text), ["short"])
        XCTAssertEqual(summary.skipped[.tooLong], 2, "\(summary)")
        XCTAssertEqual(summary.records, 3)
    }

    func testMissingPathIsAnErrorNamingIt() {
        XCTAssertThrowsError(try CorpusReader(paths: ["/nonexistent/corpus.jsonl"])) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/corpus.jsonl"), "\(error)")
        }
    }

    func testSharedJapaneseCorpusStreamsEveryRecord() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("shared/data/corpus/ja/kyoto_wiki_ja.sample.jsonl").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
        let (docs, summary) = try read(try CorpusReader(paths: [path]))
        XCTAssertEqual(summary.records, expected)
        XCTAssertEqual(docs.count + summary.skippedTotal, expected)
        XCTAssertGreaterThan(docs.count, 0)
    }
}
