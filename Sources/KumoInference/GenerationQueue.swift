import Foundation

/// Serialises generation for the server: requests wait in arrival order and a worker thread admits
/// them into a `DecodeBatch` whenever a cache slot is free, between two decode steps, so concurrent
/// requests are queued, never dropped (unless cancelled: see `GenerationCancellation`), decoded
/// together, and a new one need not wait for a running batch to end.
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

    /// Admits waiting jobs into free cache slots between decode steps (continuous batching) and steps
    /// the batch until it and the queue are empty.
    private func work() {
        let batch = DecodeBatch(generator: generator)
        while true {
            condition.lock()
            while pending.isEmpty && batch.isEmpty { condition.wait() }
            let joining = Array(pending.prefix(batch.freeSlotCount))
            pending.removeFirst(joining.count)
            condition.unlock()
            for job in joining { batch.admit(job.request, onText: job.onText, done: job.done) }
            batch.step()
        }
    }
}
