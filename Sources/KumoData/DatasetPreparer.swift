import Foundation
import KumoCore

/// Where a dataset preparation stands, for a progress display.
public struct PrepareProgress: Sendable {
    /// Input bytes read so far, and in all (compressed bytes for gzip).
    public var bytesRead: Int
    public var bytesTotal: Int
    public var documents: Int
    public var tokens: Int
    public var seconds: Double
}

/// Tokenizes a corpus into a Megatron-format indexed dataset (`PREFIX.bin`, `PREFIX.idx`) with an
/// end-of-document token after each document, and records its metadata (`PREFIX.meta.json`).
public struct DatasetPreparer {
    public let reader: CorpusReader
    public let tokenizer: any Tokenizer
    /// How the tokenizer was named (a model path, or `byte`), recorded in the metadata.
    public let tokenizerName: String
    public let level: ReleaseLevel

    /// Prepares data of `level` (refused for LZ: such data may not be used at all).
    public init(reader: CorpusReader, tokenizer: any Tokenizer, tokenizerName: String, level: ReleaseLevel) throws {
        if level == .lz { throw DatasetError("release level LZ means no use: such data may not be prepared") }
        self.reader = reader
        self.tokenizer = tokenizer
        self.tokenizerName = tokenizerName
        self.level = level
    }

    /// Writes the dataset at `prefix`; records are decoded and tokenized on `Threads.current` threads,
    /// written in input order. Returns the metadata and the reading summary.
    public func prepare(prefix: String, progress: ((PrepareProgress) -> Void)? = nil) throws -> (
        DatasetMetadata, CorpusSummary
    ) {
        let start = SystemInfo.now()
        let dtype = IndexedDType.forVocabulary(size: tokenizer.vocabSize)
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: dtype)
        let total = reader.totalFileBytes
        var counts = CorpusSummary()
        var tokens = 0
        var maxTokenId: Int32?
        let tokenizer = self.tokenizer
        let reader = self.reader
        var summary = try reader.forEachBatch(batchBytes: 4 << 20) { batch, bytesRead in
            var encoded = [Result<[Int32], CorpusProblem>](repeating: .success([]), count: batch.count)
            encoded.withUnsafeMutableBufferPointer { out in
                parallelForEachDynamic(batch.count) { i in
                    out[i] = reader.document(from: batch[i]).map { tokenizer.encode($0.text) + [tokenizer.eod] }
                }
            }
            for result in encoded {
                guard let ids = try reader.account(result, in: &counts) else { continue }
                try writer.add(document: ids)
                tokens += ids.count
                maxTokenId = max(maxTokenId ?? 0, ids.max() ?? 0)
            }
            progress?(
                PrepareProgress(
                    bytesRead: bytesRead, bytesTotal: total, documents: counts.kept, tokens: tokens,
                    seconds: SystemInfo.now() - start))
        }
        summary.merge(counts)
        guard summary.kept > 0 else {
            // The writer's temporary files go with it: nothing is left at `prefix`.
            let problems = summary.firstProblems.prefix(3).map { "\n  skipped \($0)" }.joined()
            throw DatasetError(
                "no document kept, nothing written to \(prefix): \(summary)\(problems)\ncheck the input files and "
                    + "the field holding the text (now \"\(reader.textField)\")")
        }
        try writer.finish()
        let metadata = DatasetMetadata(
            level: level, tokenizer: tokenizerName == "byte" ? "byte" : absolutePath(tokenizerName),
            vocabSize: tokenizer.vocabSize, eod: tokenizer.eod, dtype: dtype.name,
            inputs: reader.files.map(absolutePath), textField: reader.textField, documents: summary.kept,
            tokens: tokens,
            skipped: Dictionary(uniqueKeysWithValues: summary.skipped.map { ($0.key.rawValue, $0.value) }),
            maxTokenId: maxTokenId)
        try metadata.write(prefix: prefix)
        return (metadata, summary)
    }
}

/// `path` made absolute against the current directory.
func absolutePath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}
