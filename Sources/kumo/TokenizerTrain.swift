import ArgumentParser
import Foundation
import KumoCore
import KumoData

/// `kumo tokenizer train`: a sentencepiece model from JSONL, JSONL.gz or text corpora.
struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a sentencepiece unigram or BPE model on JSONL, JSONL.gz or text files.",
        discussion: """
            Each kept document is split into lines; a uniform sample of the non-blank lines (--sentence-sample, \
            chosen by --seed) goes to sentencepiece's trainer. Writes PREFIX.model and PREFIX.vocab (piece and \
            score per line). Defaults follow LLM-jp's tokenizers: unigram, byte fallback, digits split, nmt_nfkc \
            normalization. Small vocabularies over Japanese text need a lower --character-coverage (e.g. 0.98): \
            every covered character takes a piece.
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "Input files or directories (JSONL, JSONL.gz, text).")
    var input: [String]

    @Option(help: "Output prefix: writes PREFIX.model and PREFIX.vocab.")
    var output: String

    @Option(help: "Pieces in the model, special and byte pieces included.")
    var vocabSize: Int

    @Option(help: "unigram or bpe.")
    var modelType = "unigram"

    @Option(help: "Fraction of characters covered by pieces; the rest become bytes (or <unk>).")
    var characterCoverage = 0.9995

    @Flag(inversion: .prefixedNo, help: "Spell characters outside the vocabulary as UTF-8 byte pieces.")
    var byteFallback = true

    @Flag(inversion: .prefixedNo, help: "Split numbers into single digits.")
    var splitDigits = true

    @Flag(inversion: .prefixedNo, help: "Add a whitespace marker before the first piece of a text.")
    var dummyPrefix = true

    @Option(help: "Normalization: identity, nfkc, nmt_nfkc, nfkc_cf or nmt_nfkc_cf.")
    var normalization = "nmt_nfkc"

    @Option(help: "Comma-separated pieces always kept whole (e.g. <EOD>,<|user|>).")
    var userDefinedSymbols = ""

    @Option(help: "Lines longer than this many bytes are left out.")
    var maxSentenceLength = 4192

    @Option(help: "Lines given to the trainer, sampled uniformly (0: all).")
    var sentenceSample = 2_000_000

    @Option(help: "Seed of the line sample.")
    var seed: UInt64 = 1

    @Option(help: "Field of the JSONL records holding the text.")
    var textField = "text"

    @Flag(help: "Stop at the first bad record instead of counting and skipping it.")
    var strict = false

    @Option(help: "Trainer threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Show sentencepiece's own training log.")
    var verbose = false

    @Flag(help: "Replace an existing model at the output prefix.")
    var force = false

    func validate() throws {
        if input.isEmpty { throw ValidationError("give at least one --input file or directory") }
        if let problem = try options().problem() { throw ValidationError(problem) }
    }

    private func options() throws -> SentencePieceTrainingOptions {
        var options = SentencePieceTrainingOptions()
        guard let type = SentencePieceTrainingOptions.ModelType(rawValue: modelType) else {
            throw ValidationError("--model-type must be unigram or bpe, not '\(modelType)'")
        }
        options.modelType = type
        options.vocabSize = vocabSize
        options.characterCoverage = characterCoverage
        options.byteFallback = byteFallback
        options.splitDigits = splitDigits
        options.addDummyPrefix = dummyPrefix
        options.normalization = normalization
        options.userDefinedSymbols = userDefinedSymbols.split(separator: ",").map(String.init)
        options.maxSentenceLength = maxSentenceLength
        options.sentenceSample = sentenceSample
        options.seed = seed
        options.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        return options
    }

    func run() throws {
        let options = try options()
        let paths = [output + ".model", output + ".vocab"]
        let existing = paths.filter { FileManager.default.fileExists(atPath: $0) }
        if !existing.isEmpty && !force {
            throw ValidationFailure("\(existing.joined(separator: ", ")) already exist; pass --force to replace them")
        }
        if let reason = paths.lazy.compactMap(unwritableReason).first {
            throw ValidationFailure("--output \(output): cannot write the model: \(reason)")
        }
        let reader = try CorpusReader(paths: input, textField: textField, strict: strict)
        let bar = ProgressBar()
        let total = reader.totalFileBytes
        let start = SystemInfo.now()
        let (sentences, report) = try SentencePieceTrainer.sentences(from: reader, options: options) { read in
            bar.update(done: read, total: total, caption: "reading lines")
        }
        bar.finish()
        print("read: \(report.corpus)")
        for problem in report.corpus.firstProblems { print("  skipped \(problem)") }
        print(
            "lines: \(report.sentences) kept, \(report.tooLong) over \(options.maxSentenceLength) bytes left out; "
                + "training on \(report.sampled) (\(report.sampledBytes) bytes)")
        FileHandle.standardError.write(Data("training \(options.modelType.rawValue) model...\n".utf8))
        let trainStart = SystemInfo.now()
        let model = try SentencePieceTrainer.train(sentences: sentences, options: options, quiet: !verbose)
        let trainSeconds = SystemInfo.now() - trainStart
        try writeAtomically(Data(model), to: paths[0])
        let tokenizer = try SentencePieceTokenizer(path: paths[0])
        try writeAtomically(Data(vocabulary(of: tokenizer).utf8), to: paths[1])
        print(
            String(
                format: "wrote %@ and %@: %d pieces; trained in %.1f s (%.1f s in all), peak memory %.0f MiB",
                paths[0], paths[1], tokenizer.vocabSize, trainSeconds, SystemInfo.now() - start,
                Double(SystemInfo.peakRSSBytes) / 1_048_576))
    }

    /// The `.vocab` file sentencepiece's trainer writes: piece, tab, score, one line per id.
    private func vocabulary(of tokenizer: SentencePieceTokenizer) -> String {
        (0..<Int32(tokenizer.vocabSize)).map { "\(tokenizer.piece($0) ?? "")\t\(tokenizer.score($0))\n" }
            .joined()
    }

    /// Writes `data` next to `path` and renames it into place, so a reader never sees half a file.
    private func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        do {
            try data.write(to: URL(fileURLWithPath: temporary))
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ValidationFailure("\(path): cannot write (\(error.localizedDescription))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw ValidationFailure("\(path): cannot write (\(reason))")
        }
    }
}
