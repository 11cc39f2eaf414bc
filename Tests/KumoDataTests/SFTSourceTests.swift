import Foundation
import XCTest

@testable import KumoData

/// The rows of `SFTSource`: masks, EOS, positions, packing and what over-long examples become.
final class SFTSourceTests: XCTestCase {
    private struct Row: Equatable {
        var inputs: [Int32]
        var targets: [Int32]
        var positions: [Int32]
    }

    private func row(_ source: SFTSource, _ index: Int) throws -> Row {
        let n = source.seqLength
        var r = Row(inputs: .init(repeating: 7, count: n), targets: .init(repeating: 7, count: n), positions: [])
        r.positions = .init(repeating: 7, count: n)
        try r.inputs.withUnsafeMutableBufferPointer { i in
            try r.targets.withUnsafeMutableBufferPointer { t in
                try r.positions.withUnsafeMutableBufferPointer { p in
                    try source.fill(
                        sample: index, into: SequenceRows(rows: 1, seqLen: n, inputs: i, targets: t, positions: p))
                }
            }
        }
        return r
    }

    private func source(
        _ examples: [PromptResponseTokens], seqLength: Int, packing: Bool = true, truncate: Bool = true,
        numSamples: Int = 0
    ) -> SFTSource {
        SFTSource(
            examples: examples, seqLength: seqLength, vocabSize: 100, pad: 0, packing: packing, truncate: truncate,
            seed: 5, numSamples: numSamples)
    }

    func testOneExampleScoresItsResponseAndEOSOnly() throws {
        // Prompt 11 12 13, response 21 22 then EOS 99: five slots of eight, then padding.
        let s = source([PromptResponseTokens(prompt: [11, 12, 13], response: [21, 22, 99])], seqLength: 8)
        XCTAssertEqual(
            try row(s, 0),
            Row(
                inputs: [11, 12, 13, 21, 22, 0, 0, 0], targets: [-100, -100, 21, 22, 99, -100, -100, -100],
                positions: [0, 1, 2, 3, 4, 0, 1, 2]))
        XCTAssertEqual(s.stats.responseTokens, 3)
        XCTAssertEqual(s.stats.paddingTokens, 3)
        XCTAssertEqual(s.stats.rows, 1)
    }

    func testExampleOfSeqLengthPlusOneTokensFillsOneRowExactly() throws {
        let s = source([PromptResponseTokens(prompt: [1, 2], response: [3, 4, 99])], seqLength: 4)
        XCTAssertEqual(
            try row(s, 0), Row(inputs: [1, 2, 3, 4], targets: [-100, 3, 4, 99], positions: [0, 1, 2, 3]))
        XCTAssertEqual(s.stats.truncated, 0)
        XCTAssertEqual(s.stats.paddingTokens, 0)
    }

    func testPackingKeepsExamplesWholeAndRestartsPositions() throws {
        // Example k is made of token 10 + k, so every row segment names its example.
        var random = SystemRandomNumberGenerator()
        let lengths = (0..<40).map { _ in (Int.random(in: 1...5, using: &random), Int.random(in: 2...6, using: &random))
        }
        let examples = lengths.enumerated().map { k, l in
            PromptResponseTokens(
                prompt: Array(repeating: Int32(10 + k), count: l.0),
                response: Array(repeating: Int32(10 + k), count: l.1))
        }
        let s = source(examples, seqLength: 12, numSamples: 100)
        XCTAssertLessThan(s.stats.rows, examples.count, "packing puts several examples in a row")
        var seen: [Int] = []
        var rows: [Row] = []
        for sample in 0..<s.stats.rows { rows.append(try row(s, sample)) }
        for r in rows {
            var t = 0
            while t < 12 {
                let token = r.inputs[t]
                XCTAssertEqual(r.positions[t], 0, "a segment starts at position 0")
                var end = t
                while end < 12 && r.inputs[end] == token && Int(r.positions[end]) == end - t { end += 1 }
                if token != 0 {
                    let k = Int(token) - 10
                    seen.append(k)
                    XCTAssertEqual(end - t, lengths[k].0 + lengths[k].1 - 1, "example \(k) is whole in its row")
                    let scored = r.targets[t..<end].filter { $0 != -100 }.count
                    XCTAssertEqual(scored, lengths[k].1, "example \(k) scores its response and EOS")
                } else {
                    XCTAssertTrue(r.targets[t..<end].allSatisfy { $0 == -100 }, "padding is not scored")
                    XCTAssertEqual(end, 12, "padding ends the row")
                }
                t = end
            }
        }
        XCTAssertEqual(seen.sorted(), Array(0..<40), "the first pass over the rows holds every example once")
        XCTAssertEqual(s.stats.responseTokens, lengths.map(\.1).reduce(0, +))
        // Later passes serve the same rows in another order; sample i depends only on i.
        let second = try (s.stats.rows..<2 * s.stats.rows).map { try row(s, $0) }
        XCTAssertNotEqual(second, rows)
        XCTAssertEqual(Set(second.map(\.inputs)), Set(rows.map(\.inputs)))
        XCTAssertEqual(try row(s, 3), try row(source(examples, seqLength: 12, numSamples: 100), 3))
    }

    func testWithoutPackingEachRowHoldsOneExample() throws {
        let examples = (0..<5).map { k in PromptResponseTokens(prompt: [Int32(10 + k)], response: [Int32(10 + k), 99]) }
        let s = source(examples, seqLength: 8, packing: false)
        XCTAssertEqual(s.stats.rows, 5)
        XCTAssertEqual(s.stats.paddingTokens, 5 * 6)
        for sample in 0..<5 {
            let r = try row(s, sample)
            XCTAssertEqual(r.positions, [0, 1, 0, 1, 2, 3, 4, 5])
            XCTAssertEqual(r.targets.filter { $0 != -100 }.count, 2)
        }
    }

    func testOverlongExamplesAreTruncatedOrSkippedAndCounted() throws {
        let examples = [
            PromptResponseTokens(prompt: [1, 2], response: [3, 4, 5, 6, 7, 99]),  // 8 tokens: over 4 + 1
            PromptResponseTokens(prompt: [1, 2, 3, 4, 5], response: [6, 99]),  // the prompt fills the row
            PromptResponseTokens(prompt: [1, 2], response: [99]),  // empty response
            PromptResponseTokens(prompt: [1], response: [2, 99]),  // fits
        ]
        let truncating = source(examples, seqLength: 4)
        XCTAssertEqual(truncating.stats.examples, 4)
        XCTAssertEqual(truncating.stats.kept, 2)
        XCTAssertEqual(truncating.stats.truncated, 1)
        XCTAssertEqual(truncating.stats.skippedLongPrompt, 1)
        XCTAssertEqual(truncating.stats.skippedEmptyResponse, 1)
        XCTAssertEqual(truncating.stats.skippedOverlong, 0)
        let rows = try (0..<truncating.stats.rows).map { try row(truncating, $0) }
        XCTAssertTrue(rows.contains { $0.inputs == [1, 2, 3, 4] && $0.targets == [-100, 3, 4, 5] })
        let skipping = source(examples, seqLength: 4, truncate: false)
        XCTAssertEqual(skipping.stats.kept, 1)
        XCTAssertEqual(skipping.stats.skippedOverlong, 2)
        XCTAssertEqual(skipping.stats.skippedEmptyResponse, 1)
        XCTAssertEqual(skipping.stats.truncated, 0)
        XCTAssertTrue(skipping.stats.summary.contains("skipped 2 overlong"), skipping.stats.summary)
    }

    func testRecordsAreReadWithAnOptionalInputAndBadLinesCounted() throws {
        let file = NSTemporaryDirectory() + "kumo-sft-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let lines = [
            #"{"instruction": "Add", "input": "1 2", "output": "3"}"#, #"{"instruction": "Hi", "output": "Hello"}"#,
            #"{"instruction": "No output"}"#, "not json", "",
        ]
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let (records, summary) = try SFTRecord.read(paths: [file])
        XCTAssertEqual(
            records,
            [SFTRecord(instruction: "Add", input: "1 2", output: "3"), SFTRecord(instruction: "Hi", output: "Hello")])
        XCTAssertEqual(summary.skipped[.missingField], 1)
        XCTAssertEqual(summary.skipped[.invalidJSON], 1)
        XCTAssertEqual(records[0].prompt(.plain), "Add\n\n1 2\n")
        let tokens = records[1].tokens(.plain, tokenizer: ByteTokenizer())
        XCTAssertEqual(tokens.prompt, Array("Hi\n".utf8).map { Int32($0) })
        XCTAssertEqual(tokens.response, Array("Hello".utf8).map { Int32($0) } + [256])
    }
}
