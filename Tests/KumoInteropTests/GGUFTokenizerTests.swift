import Foundation
import KumoData
import KumoInterop
import XCTest

/// SmolLM2-135M-Instruct's byte-level BPE tokenizer read from its GGUF file, against llama.cpp.
final class GGUFTokenizerTests: XCTestCase {
    private func tokenizer() throws -> ByteLevelBPETokenizer {
        try GGUFTokenizer.load(try GGUFFile(path: Reference.smolLM2.path))
    }

    func testSmolLM2TokenizerComesFromTheGGUFMetadata() throws {
        let tok = try tokenizer()
        XCTAssertEqual(tok.vocabSize, 49152)
        XCTAssertEqual(tok.preTokenizer, .digitsThenGPT2)
        XCTAssertEqual(tok.eos, 2)
        XCTAssertEqual(tok.id(ofToken: "<|im_end|>"), 2)
    }

    /// `loadTokenizer`, the one loader of every command: byte, GGUF and sentencepiece; failures are
    /// `TokenizerError`s naming the file, a broken GGUF's included.
    func testOneLoaderReadsEveryKindAndNamesTheFileItCannotRead() throws {
        XCTAssertTrue(try loadTokenizer(model: "byte") is ByteTokenizer)
        let gguf = try loadTokenizer(model: Reference.smolLM2.path)
        XCTAssertTrue(gguf is ByteLevelBPETokenizer)
        XCTAssertEqual(gguf.encode("The capital of France is"), [504, 3575, 282, 4649, 314])
        let spm = Reference.root.deletingLastPathComponent()
            .appendingPathComponent("shared/data/tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model").path
        XCTAssertEqual(try loadTokenizer(model: spm).vocabSize, 99_574)

        let dir = NSTemporaryDirectory() + "kumo-loader-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let truncated = dir + "/truncated.gguf"
        try Data(try Data(contentsOf: Reference.smolLM2).prefix(4096)).write(to: URL(fileURLWithPath: truncated))
        for path in [truncated, dir + "/absent.model"] {
            XCTAssertThrowsError(try loadTokenizer(model: path)) { error in
                let message = "\(error)"
                print(message)
                XCTAssertTrue(error is TokenizerError, message)
                XCTAssertTrue(message.contains(path) && message.contains("GGUF file"), message)
            }
        }
    }

    /// Ids by llama.cpp (llama-cpp-python), written by scripts/bpe_reference.py.
    func testSmolLM2IdsEqualLlamaCppOnJapaneseAndEnglishTexts() throws {
        let tok = try tokenizer()
        let golden = Reference.golden.appendingPathComponent("smollm2_tokens.json")
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: golden)) as? [String: Any])
        let texts = try XCTUnwrap(root["texts"] as? [[String: Any]])
        XCTAssertGreaterThan(texts.count, 150)
        var mismatches = 0
        for record in texts {
            let text = try XCTUnwrap(record["text"] as? String)
            let expected = try XCTUnwrap(record["llama_cpp"] as? [Int]).map { Int32($0) }
            let ids = tok.encode(text)
            if ids != expected {
                mismatches += 1
                if mismatches <= 3 {
                    print("differs: \(text.prefix(60).debugDescription)\n  kumo \(ids)\n  llama.cpp \(expected)")
                }
            }
            XCTAssertEqual(tok.decode(ids), text, "decode(encode(text)) must give the text back")
        }
        XCTAssertEqual(mismatches, 0, "\(mismatches) of \(texts.count) texts tokenize differently from llama.cpp")
    }

    func testSpecialTokensAreParsedOnlyWhenAsked() throws {
        let tok = try tokenizer()
        let start = try XCTUnwrap(tok.id(ofToken: "<|im_start|>"))
        let end = try XCTUnwrap(tok.id(ofToken: "<|im_end|>"))
        let parsed = tok.encode("<|im_start|>user\nhi<|im_end|>", parseSpecial: true)
        XCTAssertEqual(parsed.first, start)
        XCTAssertEqual(parsed.last, end)
        XCTAssertFalse(tok.encode("<|im_start|>user").contains(start))
        XCTAssertEqual(tok.decode(parsed), "user\nhi")
        XCTAssertEqual(
            String(decoding: tok.decodeBytes(parsed, keepSpecial: true), as: UTF8.self),
            "<|im_start|>user\nhi<|im_end|>")
    }
}
