import Foundation

/// Records a training run in the registry, from rank 0, without ever holding up or stopping the
/// training: a background thread registers the run, copies new metrics lines and checkpoints
/// (`RunSync`) after each step (at most once a second) and beats every `heartbeat` seconds. A
/// registry that cannot be reached is warned about once, retried every `retry` seconds, and
/// backfilled from the run directory when it answers again.
public final class RunRecorder: @unchecked Sendable {
    public let start: RunStart
    private let continuing: Bool
    private let open: () throws -> RunRegistry
    private let checkpoints: () -> [(step: Int, path: String)]
    private let warn: (String) -> Void
    private let heartbeat: TimeInterval
    private let retry: TimeInterval
    private let finishTimeout: TimeInterval
    private let condition = NSCondition()
    private var pending = true
    private var stopping = false
    private var thread: Thread?
    // Used by the recording thread only (and by `finish` after it has ended).
    private var sync: RunSync?
    private var nextAttempt = Date.distantPast
    private var warned = false

    /// The run's number once registered.
    public var number: Int? { condition.withLock { registeredNumber } }
    private var registeredNumber: Int?

    public init(
        start: RunStart, continuing: Bool, heartbeat: TimeInterval = 10, retry: TimeInterval = 30,
        finishTimeout: TimeInterval = 20,
        open: @escaping () throws -> RunRegistry, checkpoints: @escaping () -> [(step: Int, path: String)],
        warn: @escaping (String) -> Void
    ) {
        self.start = start
        self.continuing = continuing
        self.heartbeat = heartbeat
        self.retry = retry
        self.finishTimeout = finishTimeout
        self.open = open
        self.checkpoints = checkpoints
        self.warn = warn
    }

    /// Starts the recording thread; it registers the run at once.
    public func begin() {
        let thread = Thread { [self] in record() }
        thread.name = "kumo-registry"
        self.thread = thread
        thread.start()
    }

    /// A step (or checkpoint, or evaluation) was written: copy it soon.
    public func changed() {
        condition.withLock {
            pending = true
            condition.signal()
        }
    }

    /// Stops the thread, copies what is left and records how the run ended. Returns the run's number,
    /// nil when the registry could not be reached, or the thread did not return from it within
    /// `finishTimeout` seconds (the warning names `kumo runs import`).
    @discardableResult
    public func finish(_ status: RunStatus, error: String? = nil) -> Int? {
        condition.withLock {
            stopping = true
            condition.signal()
        }
        // A registry call may hang (a server that stopped answering): the run's end waits for it only so long.
        let deadline = Date().addingTimeInterval(finishTimeout)
        while thread?.isFinished == false {
            guard Date() < deadline else {
                warn(
                    "run registry: no answer within \(Int(finishTimeout)) s; "
                        + "`kumo runs import \(start.runDirectory)` records how the run ended")
                return nil
            }
            usleep(10_000)
        }
        nextAttempt = .distantPast
        guard attempt(), let sync else {
            warn(
                "the run registry does not know how run \(start.runDirectory) ended; "
                    + "`kumo runs import \(start.runDirectory)` records it")
            return nil
        }
        do {
            try sync.registry.finish(run: sync.number, status: status, error: error)
        } catch {
            warn("run registry: cannot record the end of run \(sync.number): \(error)")
        }
        return sync.number
    }

    private func record() {
        var lastCopy = Date.distantPast
        while true {
            condition.lock()
            let deadline = Date().addingTimeInterval(heartbeat)
            while !pending && !stopping && condition.wait(until: deadline) {}
            let stop = stopping
            pending = false
            condition.unlock()
            if stop { return }
            // At most one copy a second (or per beat, if shorter): a step every few milliseconds would
            // otherwise keep the database busy.
            let wait = min(1, heartbeat) - Date().timeIntervalSince(lastCopy)
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            lastCopy = Date()
            attempt()
        }
    }

    /// Registers the run if it is not yet, then copies what is new and beats; false when the registry
    /// did not answer (it is dropped, and asked again after `retry` seconds).
    @discardableResult
    private func attempt() -> Bool {
        do {
            if sync == nil {
                guard Date() >= nextAttempt else { return false }
                let registry = try open()
                let number = try registry.register(start, continuing: continuing)
                sync = RunSync(registry: registry, run: number, directory: start.runDirectory)
                condition.withLock { registeredNumber = number }
                if warned { warn("run registry: reachable again; run \(number) backfilled from \(start.runDirectory)") }
            }
            guard let sync else { return false }
            if try sync.sync(checkpoints: checkpoints()) == 0 { try sync.registry.heartbeat(run: sync.number) }
            return true
        } catch {
            if !warned {
                warn(
                    "run registry unreachable (\(error)); training goes on, retrying every \(Int(retry)) s; "
                        + "`kumo runs import \(start.runDirectory)` backfills the run")
                warned = true
            }
            sync = nil
            nextAttempt = Date().addingTimeInterval(retry)
            return false
        }
    }
}
