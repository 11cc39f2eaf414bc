import ArgumentParser
import Foundation
import KumoCore
import KumoData
import KumoInterop
import KumoTrain

/// `kumo data`: prepare, label, inspect, sample and search tokenized datasets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare Megatron-format datasets from corpora; inspect, sample and search them.",
        subcommands: [DataPrepare.self, DataLabel.self, DataInfo.self, DataSample.self, DataSearch.self])
}

/// `kumo data prepare`: corpus files in, `PREFIX.bin` / `PREFIX.idx` / `PREFIX.meta.json` out.
struct DataPrepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Tokenize JSONL, JSONL.gz or text files into a Megatron-format indexed dataset.",
        discussion: """
            Writes PREFIX.bin and PREFIX.idx (Megatron-LM's MMIDIDX format, version 1; uint16 tokens when the \
            vocabulary fits, else int32) with an end-of-document token after each document, and PREFIX.meta.json \
            with the release level, the tokenizer and the counts. Bad records are counted by reason and the first \
            ones listed with file and line; --strict stops at the first.
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "Input files or directories (JSONL, JSONL.gz, text).")
    var input: [String]

    @Option(
        help: "A sentencepiece .model file, a Hugging Face tokenizer.json (or its directory), a GGUF file, or `byte`.")
    var tokenizer: String

    @Option(help: "Output prefix: writes PREFIX.bin, PREFIX.idx and PREFIX.meta.json.")
    var output: String

    @Option(
        help:
            "Release level of the data: L1 (train, search, distribute), L2 (train, search), L3 (train only), LX (evaluation only)."
    )
    var level: String

    @Option(help: "Field of the JSONL records holding the text.")
    var textField = "text"

    @Flag(help: "Stop at the first bad record instead of counting and skipping it.")
    var strict = false

    @Option(help: "Threads tokenizing (default: all cores).")
    var threads: Int?

    @Flag(help: "Replace an existing dataset at the output prefix.")
    var force = false

    func validate() throws {
        if input.isEmpty { throw ValidationError("give at least one --input file or directory") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let level = try ReleaseLevel(parsing: self.level)
        let existing = [".bin", ".idx", ".meta.json"].map { output + $0 }.filter {
            FileManager.default.fileExists(atPath: $0)
        }
        if !existing.isEmpty && !force {
            throw DatasetError("\(existing.joined(separator: ", ")) already exist; pass --force to replace them")
        }
        let reader = try CorpusReader(paths: input, textField: textField, strict: strict)
        let tok = try loadTokenizer(model: tokenizer)
        let signals = StopSignals { [output] signal in
            let (bin, idx) = IndexedDatasetWriter.temporaryPaths(prefix: output, pid: getpid())
            for path in [bin, idx] { try? FileManager.default.removeItem(atPath: path) }
            FileHandle.standardError.write(
                Data("\nkumo: \(TrainingStopped.name(of: signal)): stopped; removed \(bin) and \(idx)\n".utf8))
            _exit(128 + signal)
        }
        defer { withExtendedLifetime(signals) {} }
        let preparer = try DatasetPreparer(reader: reader, tokenizer: tok, tokenizerName: tokenizer, level: level)
        Threads.set(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let bar = ProgressBar()
        let start = SystemInfo.now()
        let (metadata, summary) = try preparer.prepare(prefix: output) { p in
            bar.update(
                done: p.bytesRead, total: p.bytesTotal,
                caption: String(
                    format: "%.1f MB/s  %d docs  %.0f tok/s", Double(p.bytesRead) / 1e6 / max(p.seconds, 1e-9),
                    p.documents, Double(p.tokens) / max(p.seconds, 1e-9)))
        }
        bar.finish()
        let seconds = SystemInfo.now() - start
        print("read: \(summary)")
        for problem in summary.firstProblems { print("  skipped \(problem)") }
        print(
            String(
                format: "wrote %@.bin/.idx: %d documents, %d tokens (%@, level %@) in %.1f s: %.0f tokens/s, "
                    + "%.1f MB/s of input, peak memory %.0f MiB, %d threads",
                output, metadata.documents, metadata.tokens, metadata.dtype, metadata.level.rawValue, seconds,
                Double(metadata.tokens) / seconds, Double(summary.fileBytes) / 1e6 / seconds,
                Double(SystemInfo.peakRSSBytes) / 1_048_576, Threads.current))
    }
}

/// `kumo data label`: records the release level and tokenizer of a dataset made elsewhere.
struct DataLabel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Write PREFIX.meta.json for a Megatron-format dataset made by another tool (e.g. Megatron-LM).")

    @Argument(help: "Dataset prefix (PREFIX.bin and PREFIX.idx exist).")
    var prefix: String

    @Option(help: "Release level: L1, L2, L3, LX or LZ.")
    var level: String

    @Option(help: "The tokenizer the dataset was made with: a sentencepiece .model file, or `byte`.")
    var tokenizer: String

    func run() throws {
        let level = try ReleaseLevel(parsing: self.level)
        let tok = try loadTokenizer(model: tokenizer)
        let dataset = try IndexedDataset(prefix: prefix)
        let metadata = try DatasetMetadata(
            labeling: dataset, level: level, tokenizer: tok, tokenizerName: tokenizer)
        try metadata.write(prefix: prefix)
        print("wrote \(DatasetMetadata.path(prefix: prefix)): level \(level.rawValue) (\(level.allowed))")
    }
}

/// `kumo data info`: the metadata and counts of a dataset.
struct DataInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Print a dataset's release level, tokenizer and counts.")

    @Argument(help: "Dataset prefix.")
    var prefix: String

    func run() throws {
        let dataset = try IndexedDataset(prefix: prefix)
        let metadata = try DatasetMetadata.load(prefix: prefix)
        print("dataset: \(prefix)")
        print("level: \(metadata.level.rawValue) (\(metadata.level.allowed))")
        print("tokenizer: \(metadata.tokenizer) (vocab \(metadata.vocabSize), EOD \(metadata.eod))")
        print(
            "documents: \(dataset.documentCount), sequences: \(dataset.sequenceCount), tokens: \(dataset.tokenCount)"
        )
        print("dtype: \(dataset.dtype.name)")
        print(tokenIdLine(dataset, metadata))
        if !metadata.skipped.isEmpty {
            print(
                "skipped when prepared: "
                    + metadata.skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(
                        separator: ", "))
        }
    }
}

/// "token ids: LOW...HIGH", read from the `.bin`, with a warning when they leave the tokenizer's vocabulary
/// or differ from the max_token_id recorded when the dataset was prepared.
private func tokenIdLine(_ dataset: IndexedDataset, _ metadata: DatasetMetadata) -> String {
    guard let range = dataset.tokenIdRange() else { return "token ids: none (no tokens)" }
    var line = "token ids: \(range.lowerBound)...\(range.upperBound) (max token id \(range.upperBound))"
    if let bad = dataset.firstTokenOutside(vocabSize: metadata.vocabSize) {
        line +=
            "; WARNING: document \(bad.document) holds token \(bad.id), outside the vocabulary 0..<\(metadata.vocabSize) "
            + "of the tokenizer: training on it is refused; prepare the dataset again"
    }
    if let recorded = metadata.maxTokenId, recorded != range.upperBound {
        line += "; WARNING: the metadata records max token id \(recorded): the .bin changed after it was prepared"
    }
    return line
}

/// Opens a dataset whose text may be shown: its level must allow search (L1, L2).
private func openShowable(_ prefix: String, tokenizer override: String?) throws -> (
    IndexedDataset, DatasetMetadata, any Tokenizer
) {
    let metadata = try DatasetMetadata.load(prefix: prefix)
    guard metadata.level.mayShow else {
        throw DatasetError(
            "\(prefix): release level \(metadata.level.rawValue) allows \(metadata.level.allowed); its text may not be "
                + "shown (only L1 and L2 data can be sampled or searched)")
    }
    let tokenizer = try loadTokenizer(model: override ?? metadata.tokenizer)
    return (try IndexedDataset(prefix: prefix), metadata, tokenizer)
}

/// `kumo data sample`: a few documents, decoded.
struct DataSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Print randomly chosen documents of an L1/L2 dataset, decoded.")

    @Argument(help: "Dataset prefix.")
    var prefix: String

    @Option(help: "Documents to print.")
    var count = 3

    @Option(help: "Seed of the choice.")
    var seed: UInt64 = 0

    @Option(help: "Longest text printed per document, in characters.")
    var maxChars = 600

    @Option(help: "Tokenizer to decode with (default: the one in the metadata).")
    var tokenizer: String?

    func run() throws {
        let (dataset, _, tok) = try openShowable(prefix, tokenizer: tokenizer)
        guard dataset.documentCount > 0 else { throw DatasetError("\(prefix): the dataset has no documents") }
        var random = SeededRandom(seed: seed)
        for _ in 0..<min(count, dataset.documentCount) {
            let d = Int(random.next() % UInt64(dataset.documentCount))
            let text = tok.decode(dataset.documentTokens(d).filter { $0 != tok.eod })
            print("--- document \(d) (\(text.count) characters)")
            print(text.count > maxChars ? String(text.prefix(maxChars)) + " …" : text)
        }
    }
}

/// `kumo data search`: documents containing a string.
struct DataSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Print the documents of L1/L2 datasets that contain a string, with context.")

    @Argument(help: "Dataset prefixes.")
    var prefixes: [String]

    @Option(help: "The text to find (exact, case-sensitive).")
    var query: String

    @Option(help: "Most matches printed.")
    var limit = 10

    @Option(help: "Characters of context on each side of a match.")
    var context = 60

    @Option(help: "Tokenizer to decode with (default: the one in each dataset's metadata).")
    var tokenizer: String?

    func run() throws {
        let opened = try prefixes.map { try openShowable($0, tokenizer: tokenizer) }
        var found = 0
        for (prefix, (dataset, _, tok)) in zip(prefixes, opened) {
            for d in 0..<dataset.documentCount where found < limit {
                let text = tok.decode(dataset.documentTokens(d).filter { $0 != tok.eod })
                guard let range = text.range(of: query) else { continue }
                found += 1
                let before = text[..<range.lowerBound].suffix(context)
                let after = text[range.upperBound...].prefix(context)
                let snippet = (before + "[" + text[range] + "]" + after).replacingOccurrences(of: "\n", with: " ")
                print("\(prefix) document \(d): …\(snippet)…")
            }
        }
        print("\(found) match\(found == 1 ? "" : "es")" + (found == limit ? " (limit reached)" : ""))
    }
}
