import Foundation
import KumoData
import KumoInterop
import KumoModel

/// A model ready for generation: weights, tokenizer, chat template and end-of-turn tokens.
public struct ServedModel: @unchecked Sendable {
    /// The model.
    public let model: LlamaModel
    /// Its tokenizer.
    public let tokenizer: any Tokenizer
    /// The chat template its metadata names, if Kumo knows it.
    public let chatTemplate: ChatTemplate?
    /// Token ids that end a generation (end of sequence, end of turn).
    public let stopTokens: Set<Int32>

    /// Loads the model at `path` (Hugging Face directory, GGUF or Kumo weights) and the tokenizer at
    /// `tokenizerPath` (default: the GGUF's own, or the Hugging Face directory's tokenizer.json).
    public static func load(path: String, tokenizerPath: String?) throws -> ServedModel {
        let model = try loadModel(path: path)
        let format = try ModelFormat.detect(path)
        guard let tokenizerSource = tokenizerPath ?? (format == .kumo ? nil : path) else {
            throw InteropError(path, "is a Kumo weights file without a tokenizer: pass --tokenizer")
        }
        let tokenizer = try loadTokenizer(model: tokenizerSource)
        var template: ChatTemplate?
        switch format {
        case .gguf:
            if case .string(let jinja)? = try GGUFFile(path: path).metadata["tokenizer.chat_template"] {
                template = ChatTemplate.recognize(jinja)
            }
        case .hf:
            let config = URL(fileURLWithPath: path).appendingPathComponent("tokenizer_config.json")
            if let data = try? Data(contentsOf: config),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let jinja = json["chat_template"] as? String
            {
                template = ChatTemplate.recognize(jinja)
            }
        case .kumo: break
        }
        var stops = Set([tokenizer.eos].compactMap { $0 })
        if let bpe = tokenizer as? ByteLevelBPETokenizer, case .chatML? = template,
            let imEnd = bpe.id(ofToken: "<|im_end|>")
        {
            stops.insert(imEnd)
        }
        return ServedModel(model: model, tokenizer: tokenizer, chatTemplate: template, stopTokens: stops)
    }

    /// Prompt token ids of `text`; special tokens written in it (<|im_start|>) become their ids.
    public func encode(_ text: String) -> [Int32] {
        if let bpe = tokenizer as? ByteLevelBPETokenizer { return bpe.encode(text, parseSpecial: true) }
        return tokenizer.encode(text)
    }
}
