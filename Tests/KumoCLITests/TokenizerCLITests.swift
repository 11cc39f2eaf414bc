import Foundation
import XCTest

/// End-to-end tests of `kumo tokenizer` on the executable built by `swift build -c release`.
final class TokenizerCLITests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    private static let models = root.deletingLastPathComponent().appendingPathComponent(
        "shared/data/tokenizers/llm-jp")

    private func kumo(_ args: [String], stdin: String = "") throws -> (status: Int32, out: String, err: String) {
        let binary = Self.root.appendingPathComponent(".build/release/kumo")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(binary.path) is missing: run `swift build -c release` first (make test does)")
            return (-1, "", "")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let input = Pipe()
        let out = Pipe()
        let err = Pipe()
        p.standardInput = input
        p.standardOutput = out
        p.standardError = err
        try p.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    private func modelPath(_ name: String) throws -> String {
        let path = Self.models.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            // ../shared is part of the test fixtures (CI has it): its absence is a failure, not a skip.
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        return path
    }

    /// The first `count` one-line reference texts and their ids under `model`.
    private func references(model: String, count: Int) throws -> [(text: String, ids: [Int])] {
        let file = try modelPath("reference_encodings.jsonl")
        var found: [(String, [Int])] = []
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let text = try XCTUnwrap(object["text"] as? String)
            guard !text.contains("\n"), !text.contains("\r") else { continue }
            let encodings = try XCTUnwrap(object["encodings"] as? [String: [String: Any]])
            found.append((text, try XCTUnwrap(encodings[model]?["ids"] as? [Int])))
            if found.count == count { break }
        }
        return found
    }

    func testEncodeWritesTheOfficialIdsAsOneJSONArrayPerLine() throws {
        let name = "llm-jp-tokenizer-100k.ver3.0b1.model"
        let model = try modelPath(name)
        let refs = try references(model: name, count: 2)
        XCTAssertEqual(refs.count, 2)
        let r = try kumo(["tokenizer", "encode", "--model", model], stdin: refs.map { $0.text + "\n" }.joined())
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 2, r.out)
        for (line, ref) in zip(lines, refs) {
            let ids = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Int], String(line))
            XCTAssertEqual(ids, ref.ids, ref.text)
        }
        let withSpecials = try kumo(["tokenizer", "encode", "--model", model, "--bos", "--eos"], stdin: refs[0].text)
        XCTAssertEqual(withSpecials.status, 0, withSpecials.err)
        XCTAssertEqual(
            withSpecials.out, "[" + ([1] + refs[0].ids + [2]).map { String($0) }.joined(separator: ",") + "]\n")
    }

    func testDecodeTurnsEncodedLinesBackIntoTheText() throws {
        let model = try modelPath("llm-jp-tokenizer-100k.ver3.0b1.model")
        let text = "京都は日本の古都です。\nKyoto was the capital of Japan.\n\n"
        let encoded = try kumo(["tokenizer", "encode", "--model", model], stdin: text)
        XCTAssertEqual(encoded.status, 0, encoded.err)
        let decoded = try kumo(["tokenizer", "decode", "--model", model], stdin: encoded.out)
        XCTAssertEqual(decoded.status, 0, decoded.err)
        XCTAssertEqual(decoded.out, text)
        let bytes = try kumo(["tokenizer", "encode", "--model", "byte"], stdin: "ab\n")
        XCTAssertEqual(bytes.out, "[97,98]\n")
    }

    func testBadModelOrInputExitsNonZeroWithAMessage() throws {
        let missing = NSTemporaryDirectory() + "kumo-absent-\(UUID().uuidString).model"
        let r = try kumo(["tokenizer", "encode", "--model", missing], stdin: "text\n")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains(missing), r.err)
        let model = try modelPath("llm-jp-tokenizer-100k.ver3.0b1.model")
        let bad = try kumo(["tokenizer", "decode", "--model", model], stdin: "[1,2]\n[5, 999999]\n")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("line 2") && bad.err.contains("999999"), bad.err)
    }

    func testEveryTokenizerCommandHasHelp() throws {
        for command in [["tokenizer"], ["tokenizer", "encode"], ["tokenizer", "decode"], ["tokenizer", "info"]] {
            let r = try kumo(command + ["--help"])
            XCTAssertEqual(r.status, 0, "\(command)")
            XCTAssertTrue(r.out.contains("USAGE"), "\(command): \(r.out)")
        }
    }
}
