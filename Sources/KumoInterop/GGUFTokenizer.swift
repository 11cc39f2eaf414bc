import Foundation
import KumoData

/// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata.
public enum GGUFTokenizer {
    /// llama.cpp's token types that are matched whole when special tokens are parsed: control and user-defined.
    private static let specialTypes: Set<Int> = [3, 4]

    /// The byte-level BPE tokenizer of `file` (`tokenizer.ggml.model = "gpt2"`).
    public static func load(_ file: GGUFFile) throws -> ByteLevelBPETokenizer {
        let meta = file.metadata
        func strings(_ key: String) throws -> [String] {
            guard case .array(let values)? = meta[key] else { throw InteropError(file.path, "no \(key) array") }
            return try values.map {
                guard case .string(let s) = $0 else { throw InteropError(file.path, "\(key) holds a non-string") }
                return s
            }
        }
        guard case .string(let model)? = meta["tokenizer.ggml.model"] else {
            throw InteropError(file.path, "has no tokenizer (tokenizer.ggml.model is missing)")
        }
        guard model == "gpt2" else {
            throw InteropError(
                file.path,
                "tokenizer.ggml.model '\(model)' is not supported; Kumo reads byte-level BPE ('gpt2') from GGUF "
                    + "(pass a sentencepiece .model for 'llama' tokenizers)")
        }
        let pre: ByteLevelBPETokenizer.PreTokenizer
        switch meta["tokenizer.ggml.pre"] {
        case .string("gpt2")?, nil: pre = .gpt2
        case .string("smollm")?, .string("starcoder")?, .string("refact")?: pre = .digitsThenGPT2
        case .string(let other)?:
            throw InteropError(
                file.path,
                "tokenizer.ggml.pre '\(other)' is not supported; Kumo knows gpt2, smollm, starcoder and refact")
        default: throw InteropError(file.path, "tokenizer.ggml.pre is not a string")
        }
        let tokens = try strings("tokenizer.ggml.tokens")
        var specials: Set<Int32> = []
        if case .array(let types)? = meta["tokenizer.ggml.token_type"] {
            guard types.count == tokens.count else {
                throw InteropError(
                    file.path, "tokenizer.ggml.token_type has \(types.count) entries for \(tokens.count) tokens")
            }
            for (id, type) in types.enumerated() where specialTypes.contains(type.int ?? 0) {
                specials.insert(Int32(id))
            }
        }
        func id(_ key: String) -> Int32? { meta[key]?.int.flatMap { $0 < tokens.count ? Int32($0) : nil } }
        do {
            return try ByteLevelBPETokenizer(
                tokens: tokens, merges: try strings("tokenizer.ggml.merges"), specialIds: specials, preTokenizer: pre,
                bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"))
        } catch let error as TokenizerError {
            throw InteropError(file.path, "tokenizer: \(error.description)")
        }
    }
}

/// The tokenizer named by `model`, the one loader of every command that takes a tokenizer: `byte`
/// (ids 0-255, EOD 256); a GGUF file's own tokenizer; a Hugging Face `tokenizer.json` or a directory
/// holding one; the tokenizer a Kumo weights file records; else a sentencepiece `.model` file. Every
/// failure is a `TokenizerError` naming the file.
public func loadTokenizer(model: String) throws -> any Tokenizer {
    try loadTokenizer(model: model, following: [])
}

/// `loadTokenizer(model:)`, with the Kumo weights files whose recorded tokenizer led here: a run
/// started from another run's weights records that file, so records chain; a chain that comes back
/// to a file it passed is refused instead of followed forever.
private func loadTokenizer(model: String, following chain: [String]) throws -> any Tokenizer {
    if model == "byte" { return ByteTokenizer() }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
        throw TokenizerError.modelNotFound(path: model)
    }
    if isDirectory.boolValue { return try ByteLevelBPETokenizer(tokenizerJSON: model + "/tokenizer.json") }
    if model.hasSuffix("tokenizer.json") { return try ByteLevelBPETokenizer(tokenizerJSON: model) }
    if let handle = FileHandle(forReadingAtPath: model) {
        defer { try? handle.close() }
        if handle.readData(ofLength: 4) == Data("GGUF".utf8) {
            do {
                return try GGUFTokenizer.load(try GGUFFile(path: model))
            } catch let error as InteropError {
                throw TokenizerError.invalidModel(
                    path: model, reason: (error.offset.map { "byte \($0): " } ?? "") + error.message)
            }
        }
    }
    if (try? ModelFormat.detect(model)) == .kumo {
        guard let recorded = try? KumoWeights.tokenizer(of: model) else {
            throw TokenizerError.invalidModel(
                path: model,
                reason: "a Kumo weights file that records no tokenizer; name the tokenizer it was trained with")
        }
        guard !chain.contains(model) else {
            throw TokenizerError.invalidModel(
                path: model,
                reason: "its recorded tokenizer leads back to it: \((chain + [model]).joined(separator: " -> "))")
        }
        return try loadTokenizer(model: recorded, following: chain + [model])
    }
    return try SentencePieceTokenizer(path: model)
}
