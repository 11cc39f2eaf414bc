import Foundation

/// Serialises generation for the server: requests wait in arrival order and a worker thread runs
/// them in batches of up to the engine's slot count, so concurrent requests are queued, never
/// dropped, and decoded together.
public final class GenerationQueue: @unchecked Sendable {
    struct Job {
        let request: GenerationRequest
        let onText: (String) -> Void
        let done: (GenerationResult) -> Void
    }

    private let generator: Generator
    private let condition = NSCondition()
    private var pending: [Job] = []

    /// Starts the worker thread.
    public init(generator: Generator) {
        self.generator = generator
        let thread = Thread { [unowned self] in self.work() }
        thread.name = "kumo-generation"
        thread.start()
    }

    /// Queues `request`; `onText` receives its text as it becomes final (on the worker thread), and
    /// the result is returned when it ends.
    public func submit(_ request: GenerationRequest, onText: @escaping (String) -> Void = { _ in }) async
        -> GenerationResult
    {
        await withCheckedContinuation { continuation in
            condition.lock()
            pending.append(Job(request: request, onText: onText, done: { continuation.resume(returning: $0) }))
            condition.signal()
            condition.unlock()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let batch = Array(pending.prefix(generator.engine.cache.slots))
            pending.removeFirst(batch.count)
            condition.unlock()
            let results = generator.generate(batch.map(\.request)) { i, text in batch[i].onText(text) }
            for (job, result) in zip(batch, results) { job.done(result) }
        }
    }
}
