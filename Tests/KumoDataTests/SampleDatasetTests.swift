import Foundation
import XCTest

@testable import KumoData

/// GPT windows over an indexed dataset, and blended mixtures of sources.
final class SampleDatasetTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-samples-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// A dataset of `lengths.count` sequences whose tokens are distinct: sequence s holds
    /// s * 1000, s * 1000 + 1, ...
    private func dataset(lengths: [Int]) throws -> IndexedDataset {
        let prefix = try temporaryDirectory() + "/d"
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .int32)
        for (s, n) in lengths.enumerated() { try writer.add(document: (0..<n).map { Int32(s * 1000 + $0) }) }
        try writer.finish()
        return try IndexedDataset(prefix: prefix)
    }

    private func windows(_ stream: TokenStream, count: Int, length: Int, from start: Int = 0) throws -> [[Int32]] {
        try (start..<start + count).map { i in
            var w = [Int32](repeating: -1, count: length)
            try w.withUnsafeMutableBufferPointer { try stream.sample(i, into: $0) }
            return w
        }
    }

    func testWindowsChainThroughTheShuffledDocumentsOverlappingByOneToken() throws {
        let lengths = (0..<30).map { 3 + ($0 * 7) % 11 }
        let data = try dataset(lengths: lengths)
        let seq = 8
        let gpt = try GPTDataset(dataset: data, seqLength: seq, numSamples: 20, seed: 42, vocabSize: 100_000)
        let all = try windows(gpt, count: 20, length: seq + 1)
        // Each window is contiguous text: inside a sequence tokens step by one; across a boundary the
        // next token starts a sequence.
        for w in all {
            for (a, b) in zip(w, w.dropFirst()) where b != a + 1 {
                XCTAssertEqual(b % 1000, 0, "window \(w) jumps from \(a) into the middle of a sequence")
            }
        }
        // Windows chain: each starts at another's last token, and the chain visits all of them once.
        let byFirst = Dictionary(uniqueKeysWithValues: all.map { ($0.first!, $0) })
        let lasts = Set(all.map { $0.last! })
        let heads = all.filter { !lasts.contains($0.first!) }
        XCTAssertEqual(heads.count, 1)
        var visited = 1
        var current = heads[0]
        while let next = byFirst[current.last!] {
            visited += 1
            current = next
        }
        XCTAssertEqual(visited, 20)
        // The served order is shuffled, not the chain order.
        XCTAssertNotEqual(all[0], heads[0])
    }

    func testSameSeedSameSamplesAndOtherSeedsOtherOrders() throws {
        let data = try dataset(lengths: (0..<40).map { 5 + $0 % 13 })
        func run(_ seed: UInt64) throws -> [[Int32]] {
            try windows(
                try GPTDataset(dataset: data, seqLength: 16, numSamples: 30, seed: seed, vocabSize: 100_000), count: 30,
                length: 17)
        }
        XCTAssertEqual(try run(7), try run(7))
        XCTAssertNotEqual(try run(7), try run(8))
    }

    func testEpochsExtendAsSamplesRequireAndEachEpochHasItsOwnOrder() throws {
        let lengths = [10, 20, 30, 40]
        let data = try dataset(lengths: lengths)
        // 100 tokens per epoch; 30 windows of 8 need 241 tokens: 3 epochs.
        let gpt = try GPTDataset(dataset: data, seqLength: 8, numSamples: 30, seed: 1, vocabSize: 100_000)
        XCTAssertEqual(gpt.epochs, 3)
        let tokens = try windows(gpt, count: 30, length: 9).flatMap { $0 }
        XCTAssertEqual(Set(tokens).count, 100, "every token of the dataset is served")
        XCTAssertThrowsError(
            try GPTDataset(dataset: try dataset(lengths: [0, 0]), seqLength: 4, numSamples: 1, seed: 0, vocabSize: 10)
        ) {
            XCTAssertTrue("\($0)".contains("has no tokens"), "\($0)")
        }
    }

    /// A source whose sample i is [source, i, i, ...].
    private struct Marked: TokenStream {
        var id: Int32
        var vocabSize = 1000
        func sample(_ index: Int, into window: UnsafeMutableBufferPointer<Int32>) {
            window[0] = id
            for k in 1..<window.count { window[k] = Int32(index) }
        }
    }

    func testBlendedMixtureMatchesWeightsWithinOnePercentOver10000Samples() throws {
        let weights = [0.7, 0.2, 0.1]
        let blend = try BlendedDataset(
            sources: (0..<3).map { Marked(id: Int32($0)) }, weights: weights, numSamples: 10_000)
        let samples = try windows(blend, count: 10_000, length: 3)
        var next = [0, 0, 0]
        for (i, s) in samples.enumerated() {
            let source = Int(s[0])
            XCTAssertEqual(blend.source(ofSample: i), source)
            XCTAssertEqual(Int(s[1]), next[source], "each source serves its samples in order")
            next[source] += 1
        }
        for (j, w) in weights.enumerated() {
            let realized = Double(next[j]) / 10_000
            XCTAssertEqual(realized, w, accuracy: 0.01, "source \(j): realized \(realized), weight \(w)")
            // Every prefix tracks the weights within one sample per source.
            for prefix in stride(from: 100, through: 10_000, by: 700) {
                let count = samples.prefix(prefix).filter { $0[0] == Int32(j) }.count
                XCTAssertLessThanOrEqual(abs(Double(count) - w * Double(prefix)), 1.0, "source \(j), prefix \(prefix)")
            }
        }
        XCTAssertEqual(BlendedDataset.samplesNeeded(weights: weights, total: 10_000), next)
    }

    func testBlendedSamplesResumeExactlyAtAnyIndex() throws {
        let data = try dataset(lengths: (0..<25).map { 4 + $0 % 9 })
        let other = try dataset(lengths: (0..<10).map { 20 + $0 })
        func make() throws -> BlendedDataset {
            let counts = BlendedDataset.samplesNeeded(weights: [3, 1], total: 200)
            return try BlendedDataset(
                sources: [
                    try GPTDataset(dataset: data, seqLength: 6, numSamples: counts[0], seed: 5, vocabSize: 100_000),
                    try GPTDataset(dataset: other, seqLength: 6, numSamples: counts[1], seed: 6, vocabSize: 100_000),
                ], weights: [3, 1], numSamples: 200)
        }
        let uninterrupted = try windows(try make(), count: 200, length: 7)
        let resumed = try windows(try make(), count: 63, length: 7, from: 137)
        XCTAssertEqual(Array(uninterrupted[137...]), resumed)
    }

    func testEpochWeightsAreTokensTimesEpochs() {
        XCTAssertEqual(BlendedDataset.weights(tokens: [1000, 500], epochs: [1, 4]), [1000, 2000])
        XCTAssertEqual(BlendedDataset.samplesNeeded(weights: [1000, 2000], total: 30), [10, 20])
    }
}
