/// A byte-level tokenizer: each UTF-8 byte is one token (ids 0–255), plus an end-of-document
/// token. Lossless for any text; used until a sentencepiece model is configured.
public struct ByteTokenizer: Sendable {
    /// The end-of-document token appended after each document.
    public let eod: Int32 = 256
    /// Number of ids the tokenizer produces (the model's vocab_size must be at least this).
    public let vocabSize = 257

    /// Creates the tokenizer.
    public init() {}

    /// Token ids of `text` (no end-of-document token).
    public func encode(_ text: String) -> [Int32] { text.utf8.map { Int32($0) } }

    /// Text of `ids`; ids that are not bytes are dropped, invalid UTF-8 is repaired.
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: ids.compactMap { $0 >= 0 && $0 < 256 ? UInt8($0) : nil }, as: UTF8.self)
    }
}
