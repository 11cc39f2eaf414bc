import Foundation

/// What `kumo data prepare` records beside a Megatron-format dataset (`PREFIX.meta.json`): its
/// release level, the tokenizer, the inputs and the counts.
public struct DatasetMetadata: Codable, Equatable, Sendable {
    /// Always `megatron-indexed-v1`: `.bin`/`.idx` as Megatron-LM writes them.
    public var format = "megatron-indexed-v1"
    public var level: ReleaseLevel
    /// The tokenizer model's path (absolute), or `byte`.
    public var tokenizer: String
    public var vocabSize: Int
    /// The end-of-document id appended after each document.
    public var eod: Int32
    /// Token storage type in `.bin` (`uint16` or `int32`).
    public var dtype: String
    public var inputs: [String]
    public var textField: String
    public var documents: Int
    public var tokens: Int
    /// Records skipped while reading the inputs, by reason.
    public var skipped: [String: Int]
    /// The largest token id in `.bin` (nil in metadata written before Kumo recorded it).
    public var maxTokenId: Int32? = nil

    enum CodingKeys: String, CodingKey {
        case format, level, tokenizer, eod, dtype, inputs, documents, tokens, skipped
        case vocabSize = "vocab_size"
        case textField = "text_field"
        case maxTokenId = "max_token_id"
    }

    /// The metadata file of a dataset prefix.
    public static func path(prefix: String) -> String { prefix + ".meta.json" }

    /// Writes the metadata next to the dataset (atomically).
    public func write(prefix: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(prefix: prefix)), options: .atomic)
    }

    /// Reads the metadata of the dataset at `prefix`; the error names the file and what to do.
    public static func load(prefix: String) throws -> DatasetMetadata {
        let file = path(prefix: prefix)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw DatasetError(
                "\(file) is missing: Kumo needs a dataset's release level before using it; prepare the data with "
                    + "`kumo data prepare --level ...`, or label a dataset made elsewhere with "
                    + "`kumo data label \(prefix) --level ... --tokenizer ...`")
        }
        do {
            return try JSONDecoder().decode(DatasetMetadata.self, from: data)
        } catch {
            throw DatasetError("\(file): not valid dataset metadata (\(error))")
        }
    }
}

extension DatasetMetadata {
    /// Metadata for a dataset made by another tool (such as Megatron-LM): its counts, and the level and
    /// tokenizer the user states; every token must lie in the tokenizer's vocabulary.
    public init(labeling dataset: IndexedDataset, level: ReleaseLevel, tokenizer: any Tokenizer, tokenizerName: String)
        throws
    {
        if let bad = dataset.firstTokenOutside(vocabSize: tokenizer.vocabSize) {
            throw DatasetError(
                "\(dataset.prefix): sequence \(bad.sequence) holds token \(bad.id), outside the tokenizer's "
                    + "vocabulary 0..<\(tokenizer.vocabSize): is it the tokenizer the dataset was made with?")
        }
        self.init(
            level: level, tokenizer: tokenizerName == "byte" ? "byte" : absolutePath(tokenizerName),
            vocabSize: tokenizer.vocabSize, eod: tokenizer.eod, dtype: dataset.dtype.name, inputs: [], textField: "",
            documents: dataset.documentCount, tokens: dataset.tokenCount, skipped: [:],
            maxTokenId: dataset.tokenIdRange()?.upperBound)
    }

    /// Checks, when `dataset` is opened for training, that its ids lie in `0..<vocabSize`: from the
    /// recorded max_token_id when there is one (the tokens are then read only to name the document),
    /// else not at all here; `GPTDataset` checks every token it reads either way.
    public func checkTokens(of dataset: IndexedDataset, vocabSize: Int) throws {
        guard let maxTokenId, Int(maxTokenId) >= vocabSize else { return }
        let first =
            dataset.firstTokenOutside(vocabSize: vocabSize).map {
                " (the first, \($0.id), in document \($0.document))"
            } ?? ""
        throw DatasetError(
            "\(dataset.prefix).bin: holds token ids up to \(maxTokenId)\(first), outside the vocabulary "
                + "0..<\(vocabSize); prepare the dataset again with the tokenizer of the model")
    }
}
