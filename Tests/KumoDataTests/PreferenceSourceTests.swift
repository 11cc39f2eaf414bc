import Foundation
import KumoData
import XCTest

/// Preference pairs as training rows: masking, positions, over-long pairs and the sample order.
final class PreferenceSourceTests: XCTestCase {
    private let tokenizer = ByteTokenizer()

    private func rows(_ source: PreferenceSource, sample: Int, seqLen: Int) throws -> (
        inputs: [Int32], targets: [Int32], positions: [Int32]
    ) {
        var (i, t, p) = (
            [Int32](repeating: 9, count: 2 * seqLen), [Int32](repeating: 9, count: 2 * seqLen),
            [Int32](repeating: 9, count: 2 * seqLen)
        )
        try i.withUnsafeMutableBufferPointer { i in
            try t.withUnsafeMutableBufferPointer { t in
                try p.withUnsafeMutableBufferPointer { p in
                    try source.fill(
                        sample: sample, into: SequenceRows(rows: 2, seqLen: seqLen, inputs: i, targets: t, positions: p)
                    )
                }
            }
        }
        return (i, t, p)
    }

    func testRowsScoreTheResponseAndItsEOSOnly() throws {
        let source = try PreferenceSource(
            records: [PreferenceRecord(prompt: "q", chosen: "ab", rejected: "c")], template: .plain,
            tokenizer: tokenizer, seqLen: 6, truncate: true, samples: 1, seed: 1)
        let (inputs, targets, positions) = try rows(source, sample: 0, seqLen: 6)
        let q = Int32(UInt8(ascii: "q"))
        let nl = Int32(UInt8(ascii: "\n"))
        let (a, b, c) = (Int32(UInt8(ascii: "a")), Int32(UInt8(ascii: "b")), Int32(UInt8(ascii: "c")))
        // Chosen: "q\n" "ab" EOS; rejected: "q\n" "c" EOS, padded.
        XCTAssertEqual(Array(inputs[0..<6]), [q, nl, a, b, 256, 0])
        XCTAssertEqual(Array(targets[0..<6]), [-100, a, b, 256, -100, -100])
        XCTAssertEqual(Array(inputs[6..<12]), [q, nl, c, 256, 0, 0])
        XCTAssertEqual(Array(targets[6..<12]), [-100, c, 256, -100, -100, -100])
        XCTAssertEqual(positions, (0..<12).map { Int32($0 % 6) })
    }

    func testOverlongPairsAreTruncatedOrSkippedAndCounted() throws {
        let records = [
            PreferenceRecord(prompt: "q", chosen: "a", rejected: "b"),
            PreferenceRecord(prompt: "q", chosen: "a much longer answer", rejected: "b"),
            PreferenceRecord(prompt: "a prompt longer than the row", chosen: "a", rejected: "b"),
        ]
        let truncating = try PreferenceSource(
            records: records, template: .plain, tokenizer: tokenizer, seqLen: 8, truncate: true, samples: 10, seed: 1)
        XCTAssertEqual(truncating.pairs.count, 2)
        XCTAssertEqual(truncating.overlong, ["truncated": 1, "skipped (prompt fills the row)": 1])
        XCTAssertTrue(truncating.summary.contains("1 truncated"), truncating.summary)
        let skipping = try PreferenceSource(
            records: records, template: .plain, tokenizer: tokenizer, seqLen: 8, truncate: false, samples: 10, seed: 1)
        XCTAssertEqual(skipping.pairs.count, 1)
        XCTAssertEqual(skipping.overlong, ["skipped (too long)": 1, "skipped (prompt fills the row)": 1])
        XCTAssertThrowsError(
            try PreferenceSource(
                records: [records[2]], template: .plain, tokenizer: tokenizer, seqLen: 8, truncate: true, samples: 1,
                seed: 1))
    }

    func testEachEpochVisitsTheUsedPairsOnceInItsOwnOrder() throws {
        let records = (0..<5).map { PreferenceRecord(prompt: "q\($0)", chosen: "a", rejected: "b") }
        let all = try PreferenceSource(
            records: records, template: .plain, tokenizer: tokenizer, seqLen: 16, truncate: true, samples: 12, seed: 3)
        XCTAssertEqual(all.pairs.count, 5)
        let epochs = [0, 1].map { e in (0..<5).map { all.slot(ofSample: e * 5 + $0) } }
        XCTAssertEqual(epochs.map { Set($0) }, [Set(0..<5), Set(0..<5)])
        XCTAssertNotEqual(epochs[0], epochs[1])
        let few = try PreferenceSource(
            records: records, template: .plain, tokenizer: tokenizer, seqLen: 16, truncate: true, samples: 3, seed: 3)
        XCTAssertEqual(few.pairs.count, 3, "a run of 3 samples uses 3 pairs")
    }

    func testRecordsLackingAFieldOrNotObjectsAreLeftOutAndCountedByReason() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pref-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = #"{"prompt": "p", "chosen_response": "c", "rejected_response": "r", "chosen": "x"}"#
        try [good, #"{"chosen": "a", "rejected": "b"}"#, "", good].joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let read = try PreferenceRecord.read(paths: [path])
        XCTAssertEqual(
            read.records,
            [PreferenceRecord(prompt: "p", chosen: "c", rejected: "r")] + [
                PreferenceRecord(prompt: "p", chosen: "c", rejected: "r")
            ])
        XCTAssertEqual(read.summary.skipped[.missingField], 1)
        try [good, "[1, 2]", "{"].joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let other = try PreferenceRecord.read(paths: [path])
        XCTAssertEqual(other.records.count, 1)
        XCTAssertEqual(other.summary.skipped[.invalidJSON], 2, "\(other.summary)")
        let text = path + ".txt"
        defer { try? FileManager.default.removeItem(atPath: text) }
        try good.write(toFile: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PreferenceRecord.read(paths: [text])) { error in
            XCTAssertTrue("\(error)".contains("name the file .jsonl"), "\(error)")
        }
    }
}
