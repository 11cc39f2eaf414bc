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

    func testStreamsAreDeterministicPerSampleIndex() throws {
        func window(_ s: TokenStream, _ i: Int) throws -> [Int32] {
            var w = [Int32](repeating: -1, count: 9)
            try w.withUnsafeMutableBufferPointer { try s.sample(i, into: $0) }
            return w
        }
        let synthetic = SyntheticTokenStream(vocabSize: 50, seed: 3)
        XCTAssertEqual(try window(synthetic, 5), try window(synthetic, 5))
        XCTAssertNotEqual(try window(synthetic, 5), try window(synthetic, 6))
        XCTAssertTrue(try window(synthetic, 1).allSatisfy { $0 >= 0 && $0 < 50 })
        let tokens = (0..<100).map { Int32($0) }
        let memory = InMemoryTokenStream(tokens: tokens, vocabSize: 100, seed: 3)
        let w = try window(memory, 2)
        XCTAssertEqual(w, try window(memory, 2))
        // A window is a contiguous slice of the corpus.
        XCTAssertEqual(w, Array(tokens[Int(w[0])..<Int(w[0]) + 9]))
    }
}
