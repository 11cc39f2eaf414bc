import CKumoBF16
import Foundation
import Synchronization

/// Kumo's one pool of worker threads, shared by its own kernels and by GEMM (OpenBLAS runs
/// single-threaded inside the pool's tasks, see `gemm`). The calling thread and up to
/// `Threads.current - 1` helpers run the tasks of one loop, each task claimed by whichever thread
/// is free, so a thread the OS deschedules (a busy neighbour on its core) delays the loop by at
/// most the task it holds. A helper that ends a loop, and a caller waiting for a loop's last task,
/// spin for at most `spinNanoseconds` before sleeping on a condition variable: decoding runs
/// hundreds of short loops a token, each of which would otherwise wait for a sleeping thread to
/// be woken, while an idle pool still sleeps. A spinning thread that finds it was descheduled, or a
/// caller whose helper has not finished its last task after the whole spin (the helper's core is
/// taken by another process, or the loop's tasks are long), stops every thread's spinning for
/// `calmNanoseconds`: a thread that spins competes for its core as a busy one and its loops would
/// wait out the other's time slices, where a thread that sleeps is run as soon as it is woken.
final class ThreadPool: @unchecked Sendable {
    /// The process's pool.
    static let shared = ThreadPool()

    /// How long a thread spins for the next loop (a helper) or a loop's end (the caller) before sleeping.
    static let spinNanoseconds = 50_000
    /// A pause between two looks at the clock longer than this means the spinning thread was descheduled.
    static let descheduledNanoseconds = 20_000
    /// How long threads sleep at once, without spinning, after a spinning thread was descheduled.
    static let calmNanoseconds = 100_000_000

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when a loop starts (helpers wait on it) and when its last task ends (the caller waits).
    private let started = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let ended = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // The current loop, all written under `mutex`: its body (nil when the pool is idle), its
    // number, number of tasks, the next unclaimed task, tasks finished, helpers allowed and joined.
    // Spinning threads read `generation` and `done` without the mutex.
    private var body: ((Int) -> Void)?
    private let generation = Atomic<Int>(0)
    private var count = 0
    private var next = 0
    private let done = Atomic<Int>(0)
    /// Until when (`monotonicNanoseconds`) threads sleep without spinning.
    private let calmUntil = Atomic<Int>(0)
    private var allowed = 0
    private var joined = 0
    private var helpers = 0

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(started, nil)
        pthread_cond_init(ended, nil)
    }

    /// Runs `body(i)` once for every i in 0..<count on the calling thread and up to `helpers`
    /// pool threads and returns true when all have run; returns false at once, running nothing,
    /// when the pool is busy (a call from inside a task, or from another thread meanwhile).
    func run(_ count: Int, helpers wanted: Int, _ body: (Int) -> Void) -> Bool {
        pthread_mutex_lock(mutex)
        guard self.body == nil else {
            pthread_mutex_unlock(mutex)
            return false
        }
        let allow = min(wanted, count - 1)
        while helpers < allow { startHelper() }
        return withoutActuallyEscaping(body) { body in
            self.body = body
            self.count = count
            (next, allowed, joined) = (0, allow, 0)
            done.store(0, ordering: .releasing)
            let loop = generation.add(1, ordering: .releasing).newValue
            for _ in 0..<allow { pthread_cond_signal(started) }
            pthread_mutex_unlock(mutex)
            work(loop)
            if spin(until: { done.load(ordering: .acquiring) == count }) { calm(from: monotonicNanoseconds()) }
            pthread_mutex_lock(mutex)
            while done.load(ordering: .relaxed) < count { pthread_cond_wait(ended, mutex) }
            self.body = nil
            pthread_mutex_unlock(mutex)
            return true
        }
    }

    /// Claims and runs tasks of loop `loop` until none is left.
    private func work(_ loop: Int) {
        var finished = false
        while runTask(of: loop, finishedOne: finished) { finished = true }
    }

    /// Counts a finished task if `finishedOne`, then runs the next unclaimed task of `loop`;
    /// false when there is none. Not inlined, so that its copy of the body is released before
    /// the finished task is counted (the caller returns, ending the body's life, once all are).
    @inline(never)
    private func runTask(of loop: Int, finishedOne: Bool) -> Bool {
        pthread_mutex_lock(mutex)
        if finishedOne, done.add(1, ordering: .releasing).newValue == count { pthread_cond_signal(ended) }
        guard generation.load(ordering: .relaxed) == loop, next < count, let body else {
            pthread_mutex_unlock(mutex)
            return false
        }
        let task = next
        next += 1
        pthread_mutex_unlock(mutex)
        body(task)
        return true
    }

    /// Starts one more helper thread; called with `mutex` held.
    private func startHelper() {
        helpers += 1
        let thread = Thread { [self] in helperLoop() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Returns once `ready()` holds, at once while the pool is calm, when this thread finds it was
    /// descheduled (which calms the pool), or after about `spinNanoseconds`: true in that last case only.
    @inline(__always)
    private func spin(until ready: () -> Bool) -> Bool {
        var last = monotonicNanoseconds()
        guard last >= calmUntil.load(ordering: .relaxed) else { return false }
        let deadline = last + Self.spinNanoseconds
        var polls = 0
        while !ready() {
            kumo_spin_pause()
            polls += 1
            guard polls % 64 == 0 else { continue }
            let now = monotonicNanoseconds()
            if now - last > Self.descheduledNanoseconds {
                calm(from: now)
                return false
            }
            if now > deadline { return true }
            last = now
        }
        return false
    }

    /// Stops spinning for `calmNanoseconds` from `now`.
    private func calm(from now: Int) { calmUntil.store(now + Self.calmNanoseconds, ordering: .relaxed) }

    /// A helper's life: wait (spinning, then asleep) until a loop starts, join it if it still wants
    /// helpers, repeat.
    private func helperLoop() {
        var seen = 0
        while true {
            _ = spin { generation.load(ordering: .acquiring) != seen }
            pthread_mutex_lock(mutex)
            while generation.load(ordering: .relaxed) == seen { pthread_cond_wait(started, mutex) }
            seen = generation.load(ordering: .relaxed)
            let join = body != nil && joined < allowed && next < count
            if join { joined += 1 }
            pthread_mutex_unlock(mutex)
            if join { work(seen) }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
private func monotonicNanoseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int(now.tv_sec) * 1_000_000_000 + now.tv_nsec
}
