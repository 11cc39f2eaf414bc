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
    /// Ends the generation early when cancelled (its client has gone); nil: it runs to its end.
    public var cancellation: GenerationCancellation?

    /// Creates a request.
    public init(
        prompt: [Int32], maxNewTokens: Int, sampling: SamplingParameters = .init(), stopStrings: [String] = [],
        stopTokens: Set<Int32> = [], logprobs: Int? = nil, echoLogprobs: Bool = false,
        cancellation: GenerationCancellation? = nil
    ) {
        self.logprobs = logprobs
        self.echoLogprobs = echoLogprobs
        self.cancellation = cancellation
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
    /// Its `cancellation` was set (the client went away) before it ended.
    case cancelled
}

/// A flag that ends a generation early, set from any thread (when a client hangs up) and read
/// between decode steps: a waiting request is dropped, a running one leaves the batch and frees its slot.
public final class GenerationCancellation: @unchecked Sendable {
    // @unchecked: `cancelled` is only read and written under `lock`.
    private let lock = NSLock()
    private var cancelled = false

    /// A flag not yet set.
    public init() {}

    /// Sets the flag.
    public func cancel() { lock.withLock { cancelled = true } }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool { lock.withLock { cancelled } }
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
/// unfinished ones advance together, one token per decode step (a `DecodeBatch`).
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
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        let batch = DecodeBatch(generator: self)
        withoutActuallyEscaping(onText) { onText in
            for (i, r) in requests.enumerated() {
                batch.admit(r, onText: { onText(i, $0) }, done: { results[i] = $0 })
            }
            while !batch.isEmpty { batch.step() }
        }
        return results.map { $0! }
    }
}
