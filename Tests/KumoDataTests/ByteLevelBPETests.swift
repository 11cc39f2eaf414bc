import Foundation
import XCTest

@testable import KumoData

/// GPT-2 byte-level BPE: the pre-tokenizers, the byte table and the merges (parity with llama.cpp on
/// SmolLM2 is in KumoInteropTests, which reads the tokenizer from the GGUF file).
final class ByteLevelBPETests: XCTestCase {
    private func pieces(_ text: String, _ kind: ByteLevelBPETokenizer.PreTokenizer) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return BPEPreTokenizer.split(scalars, kind).map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    func testGPT2PatternSplitsContractionsWordsNumbersSymbolsAndWhitespace() {
        XCTAssertEqual(
            pieces("I'm here, they'll  go\n\nnow 42!! 'S", .gpt2),
            ["I", "'m", " here", ",", " they", "'ll", " ", " go", "\n", "\n", "now", " 42", "!!", " '", "S"])
        XCTAssertEqual(pieces("end  ", .gpt2), ["end", "  "])
        XCTAssertEqual(pieces("日本語 text", .gpt2), ["日本語", " text"])
        XCTAssertEqual(pieces("", .gpt2), [])
    }

    func testSmolLMPreTokenizerPutsEveryNumberCharacterAlone() {
        XCTAssertEqual(pieces("ab 123x", .digitsThenGPT2), ["ab", " ", "1", "2", "3", "x"])
        XCTAssertEqual(pieces("２０年①", .digitsThenGPT2), ["２", "０", "年", "①"])
    }

    func testMergesApplyBestRankFirst() throws {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"]
        let leftFirst = try ByteLevelBPETokenizer(
            tokens: tokens, merges: ["a b", "ab c"], specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil)
        XCTAssertEqual(leftFirst.encode("abc"), [5])
        XCTAssertEqual(leftFirst.encode("abab"), [3, 3])
        let rightFirst = try ByteLevelBPETokenizer(
            tokens: tokens, merges: ["b c", "a b"], specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil)
        XCTAssertEqual(rightFirst.encode("abc"), [0, 4])
        XCTAssertThrowsError(
            try ByteLevelBPETokenizer(
                tokens: tokens, merges: ["abc"], specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil))
        XCTAssertThrowsError(
            try ByteLevelBPETokenizer(
                tokens: tokens, merges: [], specialIds: [9], preTokenizer: .gpt2, bos: nil, eos: nil))
    }

    func testByteTableSpellsEveryByteWithADistinctCharacterAndBack() {
        let scalars = (0...255).map { ByteLevel.scalar(of: UInt8($0)) }
        XCTAssertEqual(Set(scalars).count, 256)
        XCTAssertEqual(scalars[32], "Ġ")
        XCTAssertEqual(scalars[10], "Ċ")
        XCTAssertEqual(scalars[65], "A")
        XCTAssertEqual(scalars.map { ByteLevel.byte(of: $0) }, (0...255).map { UInt8($0) })
    }
}
