import Foundation
import KumoData

/// One generation: a prompt's token ids, how to sample, and when to stop.
public struct GenerationRequest: Sendable {
    /// Prompt token ids (at least one).
    public var prompt: [Int32]
    /// Upper bound on generated tokens.
    public var maxNewTokens: Int
    /// Sampling parameters.
    public var sampling: SamplingParameters
    /// Generation ends before the first of these strings appears; it is not part of the text.
    public var stopStrings: [String]
    /// Generation ends at these token ids (end of sequence, end of turn); they are not part of the text.
    public var stopTokens: Set<Int32>
    /// Report each generated token's log-probability with this many alternatives (nil: none).
    public var logprobs: Int?
    /// Also report the log-probability of every prompt token after the first.
    public var echoLogprobs: Bool

    /// Creates a request.
    public init(
        prompt: [Int32], maxNewTokens: Int, sampling: SamplingParameters = .init(), stopStrings: [String] = [],
        stopTokens: Set<Int32> = [], logprobs: Int? = nil, echoLogprobs: Bool = false
    ) {
        self.logprobs = logprobs
        self.echoLogprobs = echoLogprobs
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
    }
}

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    /// A stop token or stop string.
    case stop
    /// The token limit (or the cache's capacity).
    case length
}

/// The outcome of one generation.
public struct GenerationResult: Sendable {
    /// Generated token ids, including a final stop token if one ended it.
    public var tokens: [Int32]
    /// Generated text, up to (not including) a stop string.
    public var text: String
    /// Why it ended.
    public var finishReason: FinishReason
    /// Seconds spent in prefill and in decoding.
    public var prefillSeconds, decodeSeconds: Double
    /// Log-probabilities of prompt tokens 1..<count (with `echoLogprobs`).
    public var promptLogprobs: [TokenLogprob] = []
    /// Log-probabilities of the generated tokens (with `logprobs`).
    public var logprobs: [TokenLogprob] = []
}

/// Generates text for several requests at once: each is prefilled into its own cache slot, then all
/// unfinished ones advance together, one token per decode step.
public final class Generator: @unchecked Sendable {
    /// The engine that runs the model.
    public let engine: InferenceEngine
    /// The tokenizer of the model.
    public let tokenizer: any Tokenizer

    /// Pairs an engine with the model's tokenizer.
    public init(engine: InferenceEngine, tokenizer: any Tokenizer) {
        self.engine = engine
        self.tokenizer = tokenizer
    }

    /// UTF-8 bytes of `ids`, special tokens left out.
    public func bytes(_ ids: [Int32]) -> [UInt8] {
        if let bpe = tokenizer as? ByteLevelBPETokenizer { return bpe.decodeBytes(ids) }
        return Array(tokenizer.decode(ids).utf8)
    }

    /// Runs `requests` (at most `engine.cache.slots`) together; `onText(i, text)` receives request
    /// i's text as it becomes final.
    public func generate(
        _ requests: [GenerationRequest], onText: (Int, String) -> Void = { _, _ in }
    ) -> [GenerationResult] {
        precondition(requests.count <= engine.cache.slots, "more requests than cache slots")
        let vocab = engine.config.vocabSize
        let capacity = engine.cache.capacity
        var samplers = requests.map { Sampler($0.sampling) }
        var streams = requests.map { TextStream(stopStrings: $0.stopStrings, decodeBytes: bytes) }
        var results = requests.map { _ in
            GenerationResult(tokens: [], text: "", finishReason: .length, prefillSeconds: 0, decodeSeconds: 0)
        }
        var histories = requests.map(\.prompt)
        var active: [Int] = []

        /// Records token t, drawn from `logits`, for request i; returns whether i goes on.
        func accept(_ i: Int, _ t: Int32, _ logits: UnsafePointer<Float>) -> Bool {
            if let top = requests[i].logprobs {
                results[i].logprobs.append(TokenLogprob(logits: logits, vocab: vocab, token: t, top: top))
            }
            results[i].tokens.append(t)
            histories[i].append(t)
            if requests[i].stopTokens.contains(t) {
                results[i].finishReason = .stop
                return false
            }
            let text = streams[i].append(t)
            results[i].text += text
            if !text.isEmpty { onText(i, text) }
            if streams[i].stopped {
                results[i].finishReason = .stop
                return false
            }
            return results[i].tokens.count < requests[i].maxNewTokens && histories[i].count < capacity
        }

        for (i, r) in requests.enumerated() {
            precondition(!r.prompt.isEmpty && r.prompt.count <= capacity, "prompt does not fit the cache")
            let start = Date()
            let top = r.logprobs ?? 0
            let logits = engine.prefill(
                slot: i, tokens: r.prompt,
                eachRow: r.echoLogprobs
                    ? { row, l in
                        if row + 1 < r.prompt.count {
                            results[i].promptLogprobs.append(
                                TokenLogprob(logits: l, vocab: vocab, token: r.prompt[row + 1], top: top))
                        }
                    } : nil)
            results[i].prefillSeconds = Date().timeIntervalSince(start)
            guard r.maxNewTokens > 0 else { continue }
            let goesOn = logits.withUnsafeBufferPointer {
                accept(
                    i, samplers[i].next(logits: $0.baseAddress!, vocab: vocab, history: histories[i]), $0.baseAddress!)
            }
            if goesOn { active.append(i) }
        }
        while !active.isEmpty {
            let start = Date()
            let logits = engine.decode(
                tokens: active.map { histories[$0].last! }, slots: active.map { Int32($0) },
                positions: active.map { Int32(histories[$0].count - 1) })
            var next: [Int] = []
            for (b, i) in active.enumerated() {
                let t = samplers[i].next(logits: logits + b * vocab, vocab: vocab, history: histories[i])
                if accept(i, t, logits + b * vocab) { next.append(i) }
            }
            let elapsed = Date().timeIntervalSince(start)
            for i in active { results[i].decodeSeconds += elapsed }
            active = next
        }
        for i in requests.indices {
            let rest = streams[i].finish()
            results[i].text += rest
            if !rest.isEmpty { onText(i, rest) }
        }
        return results
    }
}
