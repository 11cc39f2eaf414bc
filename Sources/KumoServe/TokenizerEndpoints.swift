import Foundation
import KumoData
import KumoInference

/// vLLM's tokenizer endpoints, which lm-evaluation-harness's `tokenizer_backend=remote` calls so that
/// it can split contexts and continuations into the server's own token ids without a local copy of
/// the tokenizer: GET /tokenizer_info, POST /tokenize, POST /detokenize.
extension OpenAIServer {
    /// The text of token `id` when it encodes back to exactly [id] (special tokens included), else nil.
    func roundTripToken(_ id: Int32?) -> String? {
        guard let id else { return nil }
        let text: String
        if let bpe = served.tokenizer as? ByteLevelBPETokenizer {
            text = String(decoding: bpe.decodeBytes([id], keepSpecial: true), as: UTF8.self)
        } else {
            text = served.tokenizer.decode([id])
        }
        return (try? served.encode(text)) == [id] ? text : nil
    }

    /// {eos_token, bos_token, pad_token, model_max_length, vocab_size}; tokens that do not encode back
    /// to their own id are null.
    func tokenizerInfo() -> [String: Any] {
        let eos = roundTripToken(served.tokenizer.eos).map { $0 as Any } ?? NSNull()
        return [
            "eos_token": eos, "bos_token": roundTripToken(served.tokenizer.bos).map { $0 as Any } ?? NSNull(),
            "pad_token": eos, "model_max_length": generator.engine.cache.capacity,
            "vocab_size": served.model.config.vocabSize,
        ]
    }

    /// {"prompt": text} → {"tokens", "count", "max_model_len"}: the ids /v1/completions uses for that text.
    func tokenize(_ f: JSONFields) throws -> [String: Any] {
        guard let text = f.object["prompt"] as? String else {
            throw APIError(status: 400, message: "'prompt' must be a string", param: "prompt")
        }
        let ids = try served.promptIds(text)
        return ["tokens": ids.map(Int.init), "count": ids.count, "max_model_len": generator.engine.cache.capacity]
    }

    /// {"tokens": [ids]} → {"prompt": text}, special tokens left out.
    func detokenize(_ f: JSONFields) throws -> [String: Any] {
        let vocab = served.model.config.vocabSize
        guard let list = f.object["tokens"] as? [Any], list.allSatisfy({ $0 is NSNumber }) else {
            throw APIError(status: 400, message: "'tokens' must be a list of token ids", param: "tokens")
        }
        let ids = list.map { ($0 as! NSNumber).intValue }
        guard ids.allSatisfy({ (0..<vocab).contains($0) }) else {
            throw APIError(status: 400, message: "token ids must be in 0..<\(vocab)", param: "tokens")
        }
        return ["prompt": String(decoding: generator.bytes(ids.map(Int32.init)), as: UTF8.self)]
    }
}
