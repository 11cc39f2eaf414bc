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
        XCTAssertTrue(try loadAnyTokenizer(model: Reference.smolLM2.path) is ByteLevelBPETokenizer)
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
