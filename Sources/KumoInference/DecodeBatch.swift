import Foundation

/// Sequences that decode together, one token each per `step()`. A request joins between steps
/// (`admit` prefills it into a free cache slot) and leaves, freeing its slot, as soon as it ends, so
/// requests that arrive while others decode need not wait for them (continuous batching).
/// Not thread-safe: one caller at a time.
public final class DecodeBatch {
    private struct Sequence {
        let request: GenerationRequest
        let slot: Int
        var sampler: Sampler
        var stream: TextStream
        var result: GenerationResult
        var history: [Int32]
        let onText: (String) -> Void
        let done: (GenerationResult) -> Void
    }

    private let generator: Generator
    private var engine: InferenceEngine { generator.engine }
    private var freeSlots: [Int]
    private var active: [Sequence] = []

    /// An empty batch over `generator`'s engine, whose cache slots bound the sequences in it.
    public init(generator: Generator) {
        self.generator = generator
        freeSlots = Array((0..<generator.engine.cache.slots).reversed())
    }

    /// Cache slots free for `admit`.
    public var freeSlotCount: Int { freeSlots.count }
    /// Whether no sequence is decoding.
    public var isEmpty: Bool { active.isEmpty }

    /// Prefills `request` into a free slot and samples its first token. `onText` receives its text as
    /// it becomes final; `done` receives its result when it ends (within this call if the first token
    /// ends it, or if the request is already cancelled: then nothing is computed).
    public func admit(
        _ request: GenerationRequest, onText: @escaping (String) -> Void = { _ in },
        done: @escaping (GenerationResult) -> Void
    ) {
        precondition(!freeSlots.isEmpty, "no free cache slot")
        let prompt = request.prompt
        precondition(!prompt.isEmpty && prompt.count <= engine.cache.capacity, "prompt does not fit the cache")
        let vocab = engine.config.vocabSize
        var s = Sequence(
            request: request, slot: freeSlots.removeLast(), sampler: Sampler(request.sampling),
            stream: TextStream(stopStrings: request.stopStrings, decodeBytes: generator.bytes),
            result: GenerationResult(tokens: [], text: "", finishReason: .length, prefillSeconds: 0, decodeSeconds: 0),
            history: prompt, onText: onText, done: done)
        if request.cancellation?.isCancelled == true {
            s.result.finishReason = .cancelled
            return finish(s)
        }
        let start = Date()
        let top = request.logprobs ?? 0
        var promptLogprobs: [TokenLogprob] = []
        let logits = engine.prefill(
            slot: s.slot, tokens: prompt,
            eachRow: request.echoLogprobs
                ? { row, l in
                    if row + 1 < prompt.count {
                        promptLogprobs.append(TokenLogprob(logits: l, vocab: vocab, token: prompt[row + 1], top: top))
                    }
                } : nil)
        s.result.promptLogprobs = promptLogprobs
        s.result.prefillSeconds = Date().timeIntervalSince(start)
        guard request.maxNewTokens > 0 else { return finish(s) }
        let goesOn = logits.withUnsafeBufferPointer { l in
            accept(&s, s.sampler.next(logits: l.baseAddress!, vocab: vocab, history: s.history), l.baseAddress!)
        }
        if goesOn { active.append(s) } else { finish(s) }
    }

    /// Advances every sequence in the batch by one token; those that end leave it, and so do those
    /// whose request was cancelled, before the step.
    public func step() {
        active.removeAll { s in
            guard s.request.cancellation?.isCancelled == true else { return false }
            var s = s
            s.result.finishReason = .cancelled
            finish(s)
            return true
        }
        guard !active.isEmpty else { return }
        let vocab = engine.config.vocabSize
        let start = Date()
        let logits = engine.decode(
            tokens: active.map { $0.history.last! }, slots: active.map { Int32($0.slot) },
            positions: active.map { Int32($0.history.count - 1) })
        let goesOn = active.indices.map { b in
            let l = logits + b * vocab
            return accept(&active[b], active[b].sampler.next(logits: l, vocab: vocab, history: active[b].history), l)
        }
        let elapsed = Date().timeIntervalSince(start)
        var staying: [Sequence] = []
        for (s, stays) in zip(active, goesOn) {
            var s = s
            s.result.decodeSeconds += elapsed
            if stays { staying.append(s) } else { finish(s) }
        }
        active = staying
    }

    /// Records token t, drawn from `logits`, for s; returns whether s goes on.
    private func accept(_ s: inout Sequence, _ t: Int32, _ logits: UnsafePointer<Float>) -> Bool {
        if let top = s.request.logprobs {
            s.result.logprobs.append(TokenLogprob(logits: logits, vocab: engine.config.vocabSize, token: t, top: top))
        }
        s.result.tokens.append(t)
        s.history.append(t)
        if s.request.stopTokens.contains(t) {
            s.result.finishReason = .stop
            return false
        }
        let text = s.stream.append(t)
        s.result.text += text
        if !text.isEmpty { s.onText(text) }
        if s.stream.stopped {
            s.result.finishReason = .stop
            return false
        }
        return s.result.tokens.count < s.request.maxNewTokens && s.history.count < engine.cache.capacity
    }

    /// Flushes s's held-back text, frees its slot and hands over its result.
    private func finish(_ s: Sequence) {
        var s = s
        let rest = s.stream.finish()
        s.result.text += rest
        if !rest.isEmpty { s.onText(rest) }
        freeSlots.append(s.slot)
        s.done(s.result)
    }
}
