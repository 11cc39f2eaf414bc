import Foundation
import KumoData
import XCTest

/// Tokenizer training: parity with sentencepiece's own `spm_train`, the line sample, the options.
final class SentencePieceTrainingTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-spm-train-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// The first `documents` documents of the Japanese and English Kyoto Wikipedia corpora in ../shared.
    private func sharedCorpusSlice(documents: Int, into dir: String) throws -> String {
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/corpus")
        var lines: [String] = []
        for file in ["ja/kyoto_wiki_ja.jsonl.gz", "en/kyoto_wiki_en.jsonl.gz"] {
            // ../shared is part of the test fixtures (CI has it): its absence fails the test, not skips it.
            let reader = try CorpusReader(paths: [shared.appendingPathComponent(file).path])
            var taken = 0
            do {
                _ = try reader.forEachDocument { document in
                    guard taken < documents else { throw CancellationError() }
                    let record = try JSONSerialization.data(withJSONObject: ["text": document.text])
                    lines.append(String(decoding: record, as: UTF8.self))
                    taken += 1
                }
            } catch is CancellationError {}
            XCTAssertEqual(taken, documents, "\(file) holds fewer documents than the test needs")
        }
        let path = dir + "/corpus.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The `spm_train` that scripts/build_sentencepiece.sh builds with the sentencepiece library Kumo links.
    private static let spmTrainPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/sentencepiece/bin/spm_train").path

    /// Runs that `spm_train` (the same sentencepiece release Kumo links) on `sentences` with `options`.
    private func spmTrain(_ sentences: [String], _ options: SentencePieceTrainingOptions, in dir: String) throws
        -> String
    {
        let input = dir + "/sentences.txt"
        try (sentences.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.spmTrainPath)
        p.arguments =
            ["--input=\(input)", "--model_prefix=\(dir)/reference"] + options.flags.map { "--\($0.0)=\($0.1)" }
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "spm_train failed")
        return dir + "/reference.model"
    }

    /// Asserts that both models hold the same pieces with the same scores, id by id.
    private func assertSameVocabulary(_ a: SentencePieceTokenizer, _ b: SentencePieceTokenizer) {
        XCTAssertEqual(a.vocabSize, b.vocabSize)
        var differing = 0
        for id in 0..<Int32(min(a.vocabSize, b.vocabSize))
        where a.piece(id) != b.piece(id) || a.score(id) != b.score(id) {
            if differing < 5 {
                print("id \(id): \(a.piece(id) ?? "-") \(a.score(id)) vs \(b.piece(id) ?? "-") \(b.score(id))")
            }
            differing += 1
        }
        XCTAssertEqual(differing, 0, "\(differing) of \(a.vocabSize) pieces differ")
    }

    private func checkParityWithSpmTrain(_ type: SentencePieceTrainingOptions.ModelType) throws {
        let dir = try temporaryDirectory()
        let corpus = try sharedCorpusSlice(documents: 40, into: dir)
        var options = SentencePieceTrainingOptions()
        options.modelType = type
        options.vocabSize = 1500
        options.characterCoverage = 0.98
        options.userDefinedSymbols = ["<EOD>"]
        let (sentences, report) = try SentencePieceTrainer.sentences(
            from: try CorpusReader(paths: [corpus]), options: options)
        XCTAssertEqual(report.corpus.kept, 80)
        XCTAssertGreaterThan(sentences.count, 500)
        let model = try SentencePieceTrainer.train(sentences: sentences, options: options)
        let path = dir + "/kumo.model"
        try Data(model).write(to: URL(fileURLWithPath: path))
        let kumo = try SentencePieceTokenizer(path: path)
        let reference = try SentencePieceTokenizer(path: try spmTrain(sentences, options, in: dir))
        assertSameVocabulary(kumo, reference)
        for sentence in sentences.prefix(200) {
            XCTAssertEqual(kumo.encode(sentence), reference.encode(sentence))
        }
    }

    func testUnigramModelEqualsSpmTrainOnTheSameSentences() throws { try checkParityWithSpmTrain(.unigram) }

    func testBPEModelEqualsSpmTrainOnTheSameSentences() throws { try checkParityWithSpmTrain(.bpe) }

    func testTrainedModelFallsBackToBytesSplitsDigitsAndKeepsUserSymbolsWhole() throws {
        let dir = try temporaryDirectory()
        let corpus = try sharedCorpusSlice(documents: 20, into: dir)
        var options = SentencePieceTrainingOptions()
        options.vocabSize = 1000
        options.characterCoverage = 0.98
        options.userDefinedSymbols = ["<EOD>"]
        let (sentences, _) = try SentencePieceTrainer.sentences(
            from: try CorpusReader(paths: [corpus]), options: options)
        let path = dir + "/m.model"
        try Data(try SentencePieceTrainer.train(sentences: sentences, options: options))
            .write(to: URL(fileURLWithPath: path))
        let tok = try SentencePieceTokenizer(path: path)
        XCTAssertEqual(tok.vocabSize, 1000)
        let rare = "𠮷"  // outside any 1000-piece vocabulary: four UTF-8 bytes
        let ids = tok.encode(rare)
        XCTAssertEqual(ids.filter { tok.isByte($0) }.count, 4, "pieces: \(tok.encodePieces(rare))")
        XCTAssertEqual(tok.decode(ids), rare)
        let digits = tok.encodePieces("2026")
        XCTAssertEqual(digits.filter { $0.count == 1 && $0.first!.isNumber }.count, 4, "pieces: \(digits)")
        let eod = try XCTUnwrap(tok.id(ofPiece: "<EOD>"))
        XCTAssertTrue(tok.encode("a<EOD>b").contains(eod))
        XCTAssertEqual(tok.eod, eod)
    }

    func testLineSampleIsSeededUniformAndInReadingOrder() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/lines.jsonl"
        // 100 documents of 100 lines each, every line unique; plus one too-long line and blank lines.
        var records = (0..<100).map { d in
            "{\"text\": \"" + (0..<100).map { "line \(d * 100 + $0)" }.joined(separator: "\\n\\n") + "\"}"
        }
        records.append("{\"text\": \"" + String(repeating: "x", count: 5000) + "\"}")
        records.append("{\"title\": \"no text field\"}")
        try (records.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        var options = SentencePieceTrainingOptions()
        options.sentenceSample = 1000
        options.maxSentenceLength = 4192
        let reader = try CorpusReader(paths: [path])
        let (a, report) = try SentencePieceTrainer.sentences(from: reader, options: options)
        let (b, _) = try SentencePieceTrainer.sentences(from: reader, options: options)
        options.seed = 2
        let (c, _) = try SentencePieceTrainer.sentences(from: reader, options: options)
        XCTAssertEqual(report.sentences, 10_000)
        XCTAssertEqual(report.tooLong, 1)
        XCTAssertEqual(report.corpus.skippedTotal, 1)
        XCTAssertEqual(report.sampled, 1000)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        let indices = a.map { Int($0.dropFirst(5))! }
        XCTAssertEqual(indices, indices.sorted(), "the sample keeps reading order")
        XCTAssertEqual(Set(indices).count, 1000)
        // Uniform: each tenth of the input holds ~100 of the 1000 sampled lines (binomial sd ~9.5).
        for tenth in 0..<10 {
            let count = indices.filter { $0 / 1000 == tenth }.count
            XCTAssert((60...140).contains(count), "tenth \(tenth) holds \(count) of 1000")
        }
        options.sentenceSample = 0
        XCTAssertEqual(try SentencePieceTrainer.sentences(from: reader, options: options).0.count, 10_000)
    }

    func testBadOptionsAreRefusedWithTheReason() {
        func problem(_ change: (inout SentencePieceTrainingOptions) -> Void) -> String {
            var options = SentencePieceTrainingOptions()
            change(&options)
            return options.problem() ?? "accepted"
        }
        XCTAssertEqual(problem { _ in }, "accepted")
        XCTAssertTrue(problem { $0.vocabSize = 3 }.contains("too small"))
        XCTAssertTrue(problem { $0.characterCoverage = 1.5 }.contains("coverage"))
        XCTAssertTrue(problem { $0.normalization = "nfd" }.contains("nmt_nfkc"))
        XCTAssertTrue(problem { $0.userDefinedSymbols = ["a", "a"] }.contains("repeat"))
        XCTAssertTrue(problem { $0.userDefinedSymbols = [""] }.contains("non-empty"))
        XCTAssertThrowsError(try SentencePieceTrainer.train(sentences: [], options: .init()))
        var tooBig = SentencePieceTrainingOptions()
        tooBig.vocabSize = 50_000
        XCTAssertThrowsError(try SentencePieceTrainer.train(sentences: ["a b c", "d e f"], options: tooBig)) {
            XCTAssertTrue("\($0)".contains("sentencepiece training failed"), "\($0)")
        }
    }
}
