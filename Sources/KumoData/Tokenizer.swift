import Foundation

/// Turns text into token ids and back: what data preparation, training and sampling need.
public protocol Tokenizer: Sendable {
    /// Number of ids the tokenizer produces (the model's vocab_size must be at least this).
    var vocabSize: Int { get }
    /// The end-of-document token appended after each document.
    var eod: Int32 { get }
    /// The beginning-of-sequence token, if the tokenizer has one.
    var bos: Int32? { get }
    /// The end-of-sequence token, if the tokenizer has one.
    var eos: Int32? { get }
    /// Token ids of `text`, without beginning- or end-of-sequence tokens.
    func encode(_ text: String) -> [Int32]
    /// Text of `ids`.
    func decode(_ ids: [Int32]) -> String
}

extension ByteTokenizer: Tokenizer {
    public var bos: Int32? { nil }
    public var eos: Int32? { nil }
}
