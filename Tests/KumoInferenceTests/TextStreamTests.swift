import XCTest

@testable import KumoInference

/// Incremental detokenization: whole UTF-8 characters only, stop strings cut and never half-shown.
final class TextStreamTests: XCTestCase {
    /// A byte "tokenizer": id i is byte i.
    private func stream(_ stops: [String] = []) -> TextStream {
        TextStream(stopStrings: stops) { $0.map { UInt8($0) } }
    }

    func testSplitCharacterIsHeldUntilComplete() {
        var s = stream()
        let bytes = Array("日本".utf8)  // two 3-byte characters
        let pieces = bytes.map { s.append(Int32($0)) }
        XCTAssertEqual(pieces, ["", "", "日", "", "", "本"])
        XCTAssertEqual(s.finish(), "")
    }

    func testStopStringEndsTheTextBeforeIt() {
        var s = stream(["<|im_end|>"])
        var out = ""
        for b in "Hello<|im_end|>more".utf8 {
            out += s.append(Int32(b))
            if s.stopped { break }
        }
        XCTAssertTrue(s.stopped)
        XCTAssertEqual(out, "Hello")
    }

    func testPossibleStopPrefixIsHeldBackThenReleased() {
        var s = stream(["###"])
        XCTAssertEqual(s.append(Int32(UInt8(ascii: "a"))), "a")
        XCTAssertEqual(s.append(Int32(UInt8(ascii: "#"))), "")
        XCTAssertEqual(s.append(Int32(UInt8(ascii: "#"))), "")
        XCTAssertEqual(s.append(Int32(UInt8(ascii: "b"))), "##b")
        XCTAssertFalse(s.stopped)
    }

    func testUnfinishedCharacterAtTheEndBecomesReplacement() {
        var s = stream()
        XCTAssertEqual(s.append(0xE6), "")
        XCTAssertEqual(s.finish(), "\u{FFFD}")
    }
}
