import Foundation
import KumoCore
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
    /// `tokenizerPath` (default: the GGUF's own, the Hugging Face directory's tokenizer.json, or the one a
    /// Kumo weights file records).
    public static func load(path: String, tokenizerPath: String?) throws -> ServedModel {
        let model = try loadModel(path: path)
        let format = try ModelFormat.detect(path)
        if tokenizerPath == nil, format == .kumo, try KumoWeights.tokenizer(of: path) == nil {
            throw InteropError(path, "is a Kumo weights file that records no tokenizer: pass --tokenizer")
        }
        let tokenizerSource = tokenizerPath ?? path
        let tokenizer = try loadTokenizer(model: tokenizerSource)
        try checkFits(tokenizer, source: tokenizerSource, model: model, path: path)
        let template = try chatTemplate(of: path, format: format)
        var stops = Set([tokenizer.eos].compactMap { $0 })
        if let bpe = tokenizer as? ByteLevelBPETokenizer, case .chatML? = template,
            let imEnd = bpe.id(ofToken: "<|im_end|>")
        {
            stops.insert(imEnd)
        }
        return ServedModel(model: model, tokenizer: tokenizer, chatTemplate: template, stopTokens: stops)
    }

    /// The chat template the model at `path` names, when Kumo knows it: a GGUF's
    /// `tokenizer.chat_template`, a Hugging Face directory's tokenizer_config.json, or for a Kumo
    /// weights file the template it was tuned with, else the one of the GGUF or Hugging Face
    /// directory it records as its tokenizer (a model fine-tuned from SmolLM2 chats as SmolLM2).
    static func chatTemplate(of path: String, format: ModelFormat) throws -> ChatTemplate? {
        switch format {
        case .gguf:
            guard case .string(let jinja)? = try GGUFFile(path: path).metadata["tokenizer.chat_template"] else {
                return nil
            }
            return ChatTemplate.recognize(jinja)
        case .hf:
            let config = URL(fileURLWithPath: path).appendingPathComponent("tokenizer_config.json")
            guard let data = try? Data(contentsOf: config),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let jinja = json["chat_template"] as? String
            else { return nil }
            return ChatTemplate.recognize(jinja)
        case .kumo:
            if let name = try KumoWeights.chatTemplate(of: path) {
                return InstructionTemplate(rawValue: name).flatMap(ChatTemplate.init(tuning:))
            }
            guard let tokenizer = try KumoWeights.tokenizer(of: path), tokenizer != "byte",
                let recorded = try? ModelFormat.detect(tokenizer), recorded != .kumo
            else { return nil }
            return try chatTemplate(of: tokenizer, format: recorded)
        }
    }

    /// Prompt token ids of `text`; special tokens written in it (<|im_start|>) become their ids.
    /// Refuses a tokenizer (loaded from `source`) whose ids would fall outside the vocabulary of
    /// `model` (loaded from `path`): every command that runs a model with a tokenizer checks this.
    public static func checkFits(_ tokenizer: any Tokenizer, source: String, model: LlamaModel, path: String) throws {
        guard tokenizer.vocabSize <= model.config.vocabSize else {
            throw InteropError(
                source,
                "is a tokenizer of \(tokenizer.vocabSize) tokens but the model \(path) has a vocabulary of "
                    + "\(model.config.vocabSize): its ids would fall outside the model; pass the tokenizer the model "
                    + "was trained with")
        }
    }

    /// Throws if an id lies outside the model's vocabulary (a tokenizer larger than the model).
    public func encode(_ text: String) throws(TokenOutsideVocabulary) -> [Int32] {
        let ids =
            (tokenizer as? ByteLevelBPETokenizer)?.encode(text, parseSpecial: true) ?? tokenizer.encode(text)
        let vocab = model.config.vocabSize
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw TokenOutsideVocabulary(
                message: "the text encodes to token id \(bad), outside the model's vocabulary 0..<\(vocab)")
        }
        return ids
    }

    /// A generator over `slots` key/value cache slots of `context` positions (at most
    /// max_position_embeddings), refused with numbers when the context is empty or the caches do not fit.
    public func generator(
        slots: Int, context: Int, format: WeightFormat, kvCache: KVCacheFormat = .fp32
    ) throws -> Generator {
        let capacity = min(context, model.config.maxPositionEmbeddings)
        let engine = try InferenceEngine.checked(
            model: model, slots: slots, capacity: capacity, format: format, kvCache: kvCache)
        return Generator(engine: engine, tokenizer: tokenizer)
    }
}

/// Text that encodes to a token id the model has no row for.
public struct TokenOutsideVocabulary: Error {
    /// The id and the vocabulary's range.
    public let message: String
}
