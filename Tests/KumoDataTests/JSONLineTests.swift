import Foundation
import XCTest

@testable import KumoData

/// The JSONL field reader agrees with a full JSON parser on text and on validity.
final class JSONLineTests: XCTestCase {
    private func field(_ line: String, _ name: String = "text") -> JSONLine.Field {
        JSONLine.field(name, in: Array(line.utf8))
    }

    func testFieldsEscapesAndMalformedRecords() {
        let cases: [(String, JSONLine.Field)] = [
            (#"{"text": "plain"}"#, .text("plain")),
            (
                #"  {"id": 7, "text": "a\nb\t\"q\" \\ \/ \u00e9\u3042 \ud83d\ude00", "x": [1, {"y": null}]}  "#,
                .text("a\nb\t\"q\" \\ / é\u{3042} 😀")
            ),
            (#"{"text": "first", "text": "last"}"#, .text("last")),
            (#"{"text": "lone \udc00 surrogate"}"#, .text("lone \u{FFFD} surrogate")),
            (#"{"text": ""}"#, .text("")),
            (#"{}"#, .missing),
            (#"{"body": "x", "n": -1.5e+3, "ok": true, "no": false}"#, .missing),
            (#"{"text": 42}"#, .notString),
            (#"{"text": {"nested": "x"}}"#, .notString),
            (#"[1, 2]"#, .notObject),
            (#""just a string""#, .notObject),
            (#"{"text": "unterminated}"#, .invalid),
            (#"{"text": "x",}"#, .invalid),
            (#"{"text": "x"} trailing"#, .invalid),
            (#"{"text": "bad \q escape"}"#, .invalid),
            ("{\"text\": \"raw \t tab\"}", .invalid),
            (#"{"text" "x"}"#, .invalid),
            (#"{"n": 01}"#, .invalid),
            (#"{"n": tru}"#, .invalid),
            ("not json", .invalid),
            ("", .invalid),
            (String(repeating: "[", count: 300) + String(repeating: "]", count: 300), .invalid),
        ]
        for (line, expected) in cases {
            XCTAssertEqual(field(line), expected, line)
        }
    }

    func testAgreesWithJSONSerializationOnRandomRecords() throws {
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("ab \n\t\"\\/\u{0}\u{1f}éあ漢😀\u{7f}\u{2028}")
        for _ in 0..<500 {
            let text = String(
                (0..<Int.random(in: 0..<30, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            let object: [String: Any] = [
                "id": Int.random(in: -1000...1000, using: &random), "text": text, "meta": ["k": [1.5, "v"]],
            ]
            let line = try JSONSerialization.data(withJSONObject: object)
            XCTAssertEqual(JSONLine.field("text", in: Array(line)), .text(text), String(decoding: line, as: UTF8.self))
            XCTAssertEqual(JSONLine.field("meta", in: Array(line)), .notString)
        }
    }
}
