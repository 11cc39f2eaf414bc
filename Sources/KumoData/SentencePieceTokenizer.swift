import CSentencePiece
import Foundation
import KumoCore

/// A tokenizer could not be loaded; the message names the file.
public enum TokenizerError: UserFacingError, Equatable {
    /// No file exists at `path`.
    case modelNotFound(path: String)
    /// The file at `path` is not a tokenizer of its kind; `reason` says what is wrong.
    case invalidModel(path: String, reason: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case .modelNotFound(let path), .invalidModel(let path, _): return path
        }
    }

    /// The kinds of tokenizer `loadTokenizer` reads, for messages.
    public static let kinds =
        "a sentencepiece .model, a Hugging Face tokenizer.json (or its directory), a GGUF file or `byte`"

    public var description: String {
        switch self {
        case .modelNotFound(let path):
            return "\(path): no such tokenizer model; pass \(Self.kinds)"
        case .invalidModel(let path, let reason):
            return "\(path): not a tokenizer Kumo can read (\(reason)); the file may be truncated or of another "
                + "format: pass \(Self.kinds)"
        }
    }
}

/// A tokenizer backed by the sentencepiece library (unigram or BPE `.model` files, byte fallback
/// included); encodes exactly as sentencepiece's own `encode` with default options.
public final class SentencePieceTokenizer: Tokenizer, @unchecked Sendable {
    // @unchecked: the processor is never mutated after loading, and sentencepiece's encode and
    // decode are const and safe to call from several threads.
    private let handle: OpaquePointer

    /// The model file this tokenizer was loaded from.
    public let path: String
    /// Number of pieces in the vocabulary.
    public let vocabSize: Int
    /// Id of the unknown piece (sentencepiece requires every model to have one).
    public let unk: Int32
    /// Id of the beginning-of-sequence piece (`<s>`), if the model has one.
    public let bos: Int32?
    /// Id of the end-of-sequence piece (`</s>`), if the model has one.
    public let eos: Int32?
    /// Id of the padding piece, if the model has one.
    public let pad: Int32?
    /// The end-of-document token: `<EOD>` where the model has it (LLM-jp), else `eos`, else `unk`.
    public let eod: Int32

    /// Loads the sentencepiece model at `path`; throws `TokenizerError` naming the file if it cannot.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.modelNotFound(path: path)
        }
        if isDirectory.boolValue { throw TokenizerError.invalidModel(path: path, reason: "it is a directory") }
        var message: UnsafeMutablePointer<CChar>?
        guard let handle = kumo_spm_load(path, &message) else {
            var reason = message.map { String(cString: $0) } ?? "unknown error"
            kumo_spm_free_message(message)
            // sentencepiece reports a protobuf that does not parse by quoting its own source line.
            if reason.contains("ParseFromArray") { reason = "its bytes do not parse as a model protobuf" }
            throw TokenizerError.invalidModel(path: path, reason: reason)
        }
        self.handle = handle
        self.path = path
        vocabSize = Int(kumo_spm_piece_count(handle))
        func optionalId(_ id: Int32) -> Int32? { id >= 0 ? id : nil }
        unk = kumo_spm_unk_id(handle)
        bos = optionalId(kumo_spm_bos_id(handle))
        eos = optionalId(kumo_spm_eos_id(handle))
        pad = optionalId(kumo_spm_pad_id(handle))
        let eodPiece = "<EOD>"
        let eodId = eodPiece.utf8CString.withUnsafeBufferPointer {
            kumo_spm_piece_to_id(handle, $0.baseAddress, $0.count - 1)
        }
        eod = optionalId(eodId) ?? eos ?? unk
    }

    deinit { kumo_spm_free(handle) }

    /// Token ids of `text`, without BOS or EOS.
    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { utf8 in
            var capacity = utf8.count + 8
            while true {
                var needed = 0
                var message: UnsafeMutablePointer<CChar>?
                let ids = [Int32](unsafeUninitializedCapacity: capacity) { buffer, count in
                    let n = kumo_spm_encode_ids(
                        handle, utf8.baseAddress, utf8.count, buffer.baseAddress, capacity, &message)
                    needed = Int(n)
                    count = n >= 0 && Int(n) <= capacity ? Int(n) : 0
                }
                if needed < 0 { Self.fail(message) }
                if needed <= capacity { return ids }
                capacity = needed
            }
        }
    }

    /// The pieces `text` encodes to, as sentencepiece spells them (`▁` for a space).
    public func encodePieces(_ text: String) -> [String] {
        var text = text
        var pieces: [String] = []
        var message: UnsafeMutablePointer<CChar>?
        let n = text.withUTF8 { utf8 in
            withUnsafeMutablePointer(to: &pieces) { list in
                kumo_spm_encode_pieces(handle, utf8.baseAddress, utf8.count, appendString, list, &message)
            }
        }
        if n < 0 { Self.fail(message) }
        return pieces
    }

    /// Text of `ids`; ids outside 0..<vocabSize are dropped, control pieces decode to nothing.
    public func decode(_ ids: [Int32]) -> String {
        let valid = ids.filter { $0 >= 0 && Int($0) < vocabSize }
        var out: [String] = []
        var message: UnsafeMutablePointer<CChar>?
        let status = valid.withUnsafeBufferPointer { buffer in
            withUnsafeMutablePointer(to: &out) { list in
                kumo_spm_decode_ids(handle, buffer.baseAddress, buffer.count, appendString, list, &message)
            }
        }
        if status != 0 { Self.fail(message) }
        return out.first ?? ""
    }

    /// The piece of `id`, or nil when `id` is outside the vocabulary.
    public func piece(_ id: Int32) -> String? {
        var out: [String] = []
        let status = withUnsafeMutablePointer(to: &out) { kumo_spm_id_to_piece(handle, id, appendString, $0) }
        return status == 0 ? out.first : nil
    }

    /// Score of `id` in the model (log probability for unigram, merge order for BPE); 0 when out of range.
    public func score(_ id: Int32) -> Float { kumo_spm_score(handle, id) }

    /// The id of `piece`, or nil when the vocabulary lacks it.
    public func id(ofPiece piece: String) -> Int32? {
        var piece = piece
        let id = piece.withUTF8 { kumo_spm_piece_to_id(handle, $0.baseAddress, $0.count) }
        return id >= 0 ? id : nil
    }

    /// Whether `id` is a byte-fallback piece (`<0x00>`..`<0xFF>`).
    public func isByte(_ id: Int32) -> Bool { kumo_spm_is_byte(handle, id) != 0 }

    /// Whether `id` is a control piece (such as `<s>`), which decodes to nothing.
    public func isControl(_ id: Int32) -> Bool { kumo_spm_is_control(handle, id) != 0 }

    /// Whether `id` is the unknown piece.
    public func isUnknown(_ id: Int32) -> Bool { kumo_spm_is_unknown(handle, id) != 0 }

    private static func fail(_ message: UnsafeMutablePointer<CChar>?) -> Never {
        // Only reachable if sentencepiece fails on a model it loaded (out of memory, say).
        let reason = message.map { String(cString: $0) } ?? "unknown error"
        kumo_spm_free_message(message)
        fatalError("sentencepiece failed: \(reason)")
    }
}

/// Appends the bytes sentencepiece hands back, as a String, to the `[String]` behind `context`.
private func appendString(_ context: UnsafeMutableRawPointer?, _ data: UnsafePointer<CChar>?, _ length: Int) {
    let list = context!.assumingMemoryBound(to: [String].self)
    let bytes = UnsafeRawBufferPointer(start: data, count: length)
    list.pointee.append(String(decoding: bytes, as: UTF8.self))
}
