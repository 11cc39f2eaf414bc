import Foundation
import XCTest

@testable import KumoData

/// Megatron-format indexed datasets: the exact layout, parity with megatron-core in both
/// directions, and a typed error for every malformed file.
final class IndexedDatasetTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-indexed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Writes documents (each a list of sequences) with Kumo's writer.
    private func write(_ documents: [[[Int32]]], to prefix: String, dtype: IndexedDType) throws {
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: dtype)
        for document in documents {
            for sequence in document { try writer.add(sequence: sequence) }
            writer.endDocument()
        }
        try writer.finish()
    }

    private let example: [[[Int32]]] = [[[1, 2, 3], [4]], [[5, 6]], [[]]]

    func testIndexFileHasMegatronsExactLayout() throws {
        let dir = try temporaryDirectory()
        try write(example, to: dir + "/a", dtype: .uint16)
        var expected: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
        func put<T: FixedWidthInteger>(_ values: [T]) {
            for v in values { withUnsafeBytes(of: v.littleEndian) { expected += $0 } }
        }
        put([UInt64(1)])
        expected.append(8)  // uint16
        put([UInt64(4), UInt64(4)])  // 4 sequences, 4 document indices
        put([Int32(3), 1, 2, 0])  // lengths
        put([Int64(0), 6, 8, 12])  // byte pointers
        put([Int64(0), 2, 3, 4])  // document indices
        let idx = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.idx"))
        XCTAssertEqual(Array(idx), expected)
        let bin = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.bin"))
        XCTAssertEqual(Array(bin), [1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0])
    }

    func testRoundTripInEveryTokenTypeAndOutOfRangeTokensAreRefused() throws {
        let dir = try temporaryDirectory()
        for dtype in IndexedDType.allCases {
            let big: Int32 = dtype.size == 1 ? 100 : dtype == .int16 ? 30000 : dtype == .uint16 ? 65535 : 99_573
            let documents: [[[Int32]]] = [[[0, big, 7]], [[big - 1]], [[], [3, 3]]]
            try write(documents, to: dir + "/\(dtype)", dtype: dtype)
            let dataset = try IndexedDataset(prefix: dir + "/\(dtype)")
            XCTAssertEqual(dataset.dtype, dtype)
            XCTAssertEqual(dataset.documentCount, 3)
            XCTAssertEqual(dataset.sequenceCount, 4)
            XCTAssertEqual(dataset.tokenCount, 6)
            XCTAssertEqual((0..<3).map { dataset.documentTokens($0) }, documents.map { $0.flatMap { $0 } }, "\(dtype)")
        }
        let writer = try IndexedDatasetWriter(prefix: dir + "/bad", dtype: .uint16)
        XCTAssertThrowsError(try writer.add(sequence: [1, 65536])) { error in
            XCTAssertTrue("\(error)".contains("token 65536 of sequence 0 does not fit uint16"), "\(error)")
        }
        XCTAssertEqual(IndexedDType.forVocabulary(size: 32000), .uint16)
        XCTAssertEqual(IndexedDType.forVocabulary(size: 99574), .int32)
    }

    func testAWriterDroppedBeforeFinishLeavesNoFiles() throws {
        let dir = try temporaryDirectory()
        do {
            let writer = try IndexedDatasetWriter(prefix: dir + "/a", dtype: .int32)
            try writer.add(document: [1, 2, 3])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// Runs scripts/megatron_indexed.py (megatron-core's own reader and builder).
    private func megatron(_ args: [String], stdin: String = "") throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.root.appendingPathComponent("scripts/megatron_indexed.py").path] + args
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
        guard p.terminationStatus == 0 else {
            throw XCTestErrorWhileRunning(
                "megatron_indexed.py failed (make test installs megatron-core): "
                    + String(decoding: e, as: UTF8.self))
        }
        return String(decoding: o, as: UTF8.self)
    }

    private var randomDocuments: [[[Int32]]] {
        var random = SystemRandomNumberGenerator()
        return (0..<50).map { d in
            (0..<(1 + d % 3)).map { _ in
                (0..<Int.random(in: 0..<40, using: &random)).map { _ in Int32.random(in: 0..<99_574, using: &random) }
            }
        }
    }

    func testMegatronReadsWhatKumoWrites() throws {
        let dir = try temporaryDirectory()
        let documents = randomDocuments
        try write(documents, to: dir + "/kumo", dtype: .int32)
        let read = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(try megatron(["read", dir + "/kumo"]).utf8)) as? [String: Any])
        XCTAssertEqual(read["dtype"] as? String, "int32")
        XCTAssertEqual(read["sequences"] as? [[Int]], documents.flatMap { $0 }.map { $0.map(Int.init) })
        var boundaries = [0]
        for document in documents { boundaries.append(boundaries.last! + document.count) }
        XCTAssertEqual(read["document_indices"] as? [Int], boundaries)
    }

    func testKumoReadsWhatMegatronWrites() throws {
        let dir = try temporaryDirectory()
        let documents = randomDocuments.map { $0.map { $0.map { $0 % 65_000 } } }
        let json = try JSONSerialization.data(withJSONObject: [
            "documents": documents.map { $0.map { $0.map(Int.init) } }
        ])
        for dtype in ["uint16", "int32"] {
            _ = try megatron(["write", dir + "/" + dtype, dtype], stdin: String(decoding: json, as: UTF8.self))
            let dataset = try IndexedDataset(prefix: dir + "/" + dtype)
            XCTAssertEqual(dataset.dtype.name, dtype)
            XCTAssertEqual(dataset.documentCount, documents.count)
            XCTAssertEqual(
                (0..<dataset.documentCount).map { dataset.documentTokens($0) }, documents.map { $0.flatMap { $0 } })
            XCTAssertEqual(dataset.sequenceCount, documents.reduce(0) { $0 + $1.count })
            // Kumo's writer produces the same bytes as Megatron's builder.
            let kumo = dir + "/kumo-" + dtype
            try write(documents, to: kumo, dtype: dtype == "uint16" ? .uint16 : .int32)
            for ext in [".bin", ".idx"] {
                XCTAssertEqual(
                    try Data(contentsOf: URL(fileURLWithPath: kumo + ext)),
                    try Data(contentsOf: URL(fileURLWithPath: dir + "/" + dtype + ext)), "\(dtype)\(ext)")
            }
        }
    }

    func testEveryMalformedFileGivesAnErrorNamingTheFileAndOffset() throws {
        let dir = try temporaryDirectory()
        try write(example, to: dir + "/good", dtype: .uint16)
        let idx = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/good.idx")))
        let bin = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/good.bin")))
        func patched(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var copy = idx
            copy.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            return copy
        }
        let cases: [(String, [UInt8], [UInt8], String)] = [
            ("empty", [], bin, "shorter than the 34-byte header"),
            ("truncated", Array(idx.prefix(60)), bin, "should be 114 bytes"),
            ("magic", patched(0, Array("NOTIDX".utf8)), bin, "MMIDIDX magic is missing) (at byte 0)"),
            ("version", patched(9, [2]), bin, "index version 2; only version 1 is supported (at byte 9)"),
            ("dtype", patched(17, [7]), bin, "dtype code 7 is not a token type (valid: 1-5 and 8) (at byte 17)"),
            (
                "count", patched(18, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), bin,
                "do not fit a 114-byte index"
            ),
            ("length", patched(34, [0xFF, 0xFF, 0xFF, 0xFF]), bin, "sequence 0 has length -1 (at byte 34)"),
            ("pointer", patched(58, [7]), bin, "sequence 1 starts at byte 7"),
            ("documents", patched(90, [4]), bin, "document index 2 is 3: not monotone"),
            ("last document", patched(106, [3]), bin, "the last document index is 3"),
            ("short bin", idx, Array(bin.dropLast(2)), "holds 10 bytes; the index describes 6 uint16 tokens"),
        ]
        for (name, index, tokens, message) in cases {
            let prefix = dir + "/" + name.replacingOccurrences(of: " ", with: "-")
            try Data(index).write(to: URL(fileURLWithPath: prefix + ".idx"))
            try Data(tokens).write(to: URL(fileURLWithPath: prefix + ".bin"))
            XCTAssertThrowsError(try IndexedDataset(prefix: prefix), name) { error in
                XCTAssertTrue("\(error)".contains(message), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(prefix), "\(name): \(error)")
            }
        }
        // Random corruptions of the index: every one is either refused or reads consistently, never a crash.
        var random = SystemRandomNumberGenerator()
        var refused = 0
        for trial in 0..<300 {
            var index = idx
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                index[Int.random(in: 0..<index.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            let prefix = dir + "/random-\(trial)"
            try Data(index).write(to: URL(fileURLWithPath: prefix + ".idx"))
            try Data(bin).write(to: URL(fileURLWithPath: prefix + ".bin"))
            if let dataset = try? IndexedDataset(prefix: prefix) {
                XCTAssertEqual(
                    (0..<dataset.sequenceCount).reduce(0) { $0 + dataset.tokens(sequence: $1).count },
                    dataset.tokenCount)
            } else {
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 200)
        XCTAssertThrowsError(try IndexedDataset(prefix: dir + "/absent")) { error in
            XCTAssertTrue("\(error)".contains("absent.idx: cannot open"), "\(error)")
        }
    }
}

/// An error thrown by a test's own plumbing, failing the test with its message.
struct XCTestErrorWhileRunning: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
