import CSentencePiece
import Foundation
import KumoCore

/// Options of sentencepiece training, with the choices LLM-jp's tokenizers make as defaults.
public struct SentencePieceTrainingOptions: Sendable, Equatable {
    /// The segmentation algorithm.
    public enum ModelType: String, Sendable, CaseIterable { case unigram, bpe }

    /// Normalization rules sentencepiece ships.
    public static let normalizations = ["identity", "nfkc", "nmt_nfkc", "nfkc_cf", "nmt_nfkc_cf"]

    public var modelType: ModelType = .unigram
    /// Pieces in the model, special and byte pieces included.
    public var vocabSize = 8000
    /// Fraction of characters the model covers; the rarest rest become unknown (or bytes).
    public var characterCoverage = 0.9995
    /// Spell characters outside the vocabulary as UTF-8 byte pieces instead of `<unk>`.
    public var byteFallback = true
    /// Split numbers into single digits.
    public var splitDigits = true
    /// Normalization rule applied before segmentation (one of `normalizations`).
    public var normalization = "nmt_nfkc"
    /// Add a whitespace marker before the first piece of a text.
    public var addDummyPrefix = true
    /// Pieces always kept whole, matched in the text (LLM-jp lists such symbols).
    public var userDefinedSymbols: [String] = []
    /// Sentences longer than this many bytes are left out.
    public var maxSentenceLength = 4192
    /// At most this many sentences, sampled uniformly by seed, go to the trainer (0: all).
    public var sentenceSample = 2_000_000
    /// Seed of the sentence sample.
    public var seed: UInt64 = 1
    /// Threads the trainer uses.
    public var threads = 2

    public init() {}

    /// Why these options cannot train a model, or nil when they can.
    public func problem() -> String? {
        if vocabSize < 8 { return "vocabulary size \(vocabSize) is too small (at least 8)" }
        if !(characterCoverage > 0 && characterCoverage <= 1) {
            return "character coverage \(characterCoverage) is outside (0, 1]"
        }
        if !Self.normalizations.contains(normalization) {
            return "unknown normalization '\(normalization)'; use one of \(Self.normalizations.joined(separator: ", "))"
        }
        if let bad = userDefinedSymbols.first(where: { $0.isEmpty || $0.contains(",") }) {
            return "user-defined symbol '\(bad)' must be non-empty and contain no comma"
        }
        if Set(userDefinedSymbols).count != userDefinedSymbols.count { return "user-defined symbols repeat" }
        if maxSentenceLength < 1 { return "maximum sentence length must be positive" }
        if sentenceSample < 0 { return "sentence sample must be 0 (all) or positive" }
        if threads < 1 { return "threads must be at least 1" }
        return nil
    }

    /// The options as spm_train flag names and values.
    public var flags: [(String, String)] {
        var flags: [(String, String)] = [
            ("model_type", modelType.rawValue),
            ("vocab_size", String(vocabSize)),
            ("character_coverage", String(characterCoverage)),
            ("byte_fallback", String(byteFallback)),
            ("split_digits", String(splitDigits)),
            ("normalization_rule_name", normalization),
            ("add_dummy_prefix", String(addDummyPrefix)),
            ("max_sentence_length", String(maxSentenceLength)),
            ("num_threads", String(threads)),
            // Kumo samples the sentences itself, by seed; the trainer takes all it is given.
            ("input_sentence_size", "0"),
        ]
        if !userDefinedSymbols.isEmpty {
            flags.append(("user_defined_symbols", userDefinedSymbols.joined(separator: ",")))
        }
        return flags
    }
}

/// What a tokenizer training read and kept.
public struct SentencePieceTrainingReport: Sendable {
    /// Documents read and skipped, by reason.
    public var corpus = CorpusSummary()
    /// Non-blank lines of the kept documents.
    public var sentences = 0
    /// Sentences left out for exceeding the maximum length.
    public var tooLong = 0
    /// Sentences given to the trainer.
    public var sampled = 0
    /// Bytes of the sentences given to the trainer.
    public var sampledBytes = 0
}

/// Trains sentencepiece models from corpora: documents are split into lines, and a seeded uniform
/// sample of them (reservoir sampling, in constant memory beyond the sample) goes to the trainer.
public enum SentencePieceTrainer {
    /// Collects the training sentences of `reader`: every non-blank line of each kept document, at
    /// most `options.sentenceSample` of them chosen by `options.seed`, in reading order.
    /// `progress` receives the file bytes read so far.
    public static func sentences(
        from reader: CorpusReader, options: SentencePieceTrainingOptions, progress: (Int) -> Void = { _ in }
    ) throws -> ([String], SentencePieceTrainingReport) {
        var report = SentencePieceTrainingReport()
        var counts = CorpusSummary()
        var sample: [(index: Int, text: String)] = []
        var random = SeededRandom(seed: options.seed)
        let capacity = options.sentenceSample == 0 ? Int.max : options.sentenceSample
        var summary = try reader.forEachBatch { batch, bytesRead in
            for record in batch {
                guard let document = try reader.account(reader.document(from: record), in: &counts) else { continue }
                for line in document.text.split(separator: "\n", omittingEmptySubsequences: true) {
                    var sentence = Substring(line)
                    if sentence.last == "\r" { sentence = sentence.dropLast() }
                    if sentence.allSatisfy(\.isWhitespace) { continue }
                    if sentence.utf8.count > options.maxSentenceLength {
                        report.tooLong += 1
                        continue
                    }
                    let index = report.sentences
                    report.sentences += 1
                    if sample.count < capacity {
                        sample.append((index, String(sentence)))
                    } else {
                        let slot = Int(random.next() % UInt64(index + 1))
                        if slot < capacity { sample[slot] = (index, String(sentence)) }
                    }
                }
            }
            progress(bytesRead)
        }
        summary.merge(counts)
        report.corpus = summary
        sample.sort { $0.index < $1.index }
        report.sampled = sample.count
        report.sampledBytes = sample.reduce(0) { $0 + $1.text.utf8.count }
        return (sample.map(\.text), report)
    }

    /// Trains a model on `sentences` and returns the serialized `.model` file.
    public static func train(sentences: [String], options: SentencePieceTrainingOptions, quiet: Bool = true) throws
        -> [UInt8]
    {
        if let problem = options.problem() { throw TokenizerTrainingError(description: problem) }
        if sentences.isEmpty { throw TokenizerTrainingError(description: "no sentences to train on") }
        kumo_spm_set_log_level(quiet ? 1 : 0)
        let feed = SentenceFeed(sentences)
        let flags = options.flags
        let keys: [UnsafePointer<CChar>?] = flags.map { UnsafePointer(strdup($0.0)) }
        let values: [UnsafePointer<CChar>?] = flags.map { UnsafePointer(strdup($0.1)) }
        defer { for text in keys + values { free(UnsafeMutablePointer(mutating: text)) } }
        var model = [UInt8]()
        var message: UnsafeMutablePointer<CChar>?
        let status = withUnsafeMutablePointer(to: &model) { out in
            kumo_spm_train(
                keys, values, flags.count, SentenceFeed.next, Unmanaged.passUnretained(feed).toOpaque(),
                { context, data, length in
                    let out = context!.assumingMemoryBound(to: [UInt8].self)
                    out.pointee = Array(UnsafeRawBufferPointer(start: data, count: length))
                }, out, &message)
        }
        withExtendedLifetime(feed) {}
        if status != 0 {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            kumo_spm_free_message(message)
            throw TokenizerTrainingError(description: "sentencepiece training failed: \(text)")
        }
        return model
    }
}

/// Tokenizer training was refused or failed; the message says why.
public struct TokenizerTrainingError: UserFacingError {
    public var description: String
}

/// Hands sentences to the C trainer one at a time, each copied into a buffer that stays valid
/// until the next call.
private final class SentenceFeed {
    private let sentences: [String]
    private var position = 0
    private var buffer: UnsafeMutablePointer<CChar>
    private var capacity = 4096

    init(_ sentences: [String]) {
        self.sentences = sentences
        buffer = .allocate(capacity: capacity)
    }

    deinit { buffer.deallocate() }

    static let next: kumo_spm_next_sentence = { context, data, length in
        let feed = Unmanaged<SentenceFeed>.fromOpaque(context!).takeUnretainedValue()
        guard feed.position < feed.sentences.count else { return 0 }
        var sentence = feed.sentences[feed.position]
        feed.position += 1
        let count = sentence.withUTF8 { bytes in
            if bytes.count > feed.capacity {
                feed.buffer.deallocate()
                feed.capacity = bytes.count
                feed.buffer = .allocate(capacity: feed.capacity)
            }
            bytes.withMemoryRebound(to: CChar.self) { feed.buffer.update(from: $0.baseAddress!, count: $0.count) }
            return bytes.count
        }
        data!.pointee = UnsafePointer(feed.buffer)
        length!.pointee = count
        return 1
    }
}
