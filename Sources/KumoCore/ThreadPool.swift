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
    /// How long threads sleep at once, without spinning, after a spinning thread was descheduled. On
    /// a host that lends a vCPU intermittently this happens every few hundred ms; 100 ms kept 2-thread
    /// decoding asleep most of the time (fp32 34–41 tokens/s against 41–48 at 10 ms; tiny training at
    /// 2 threads with a busy neighbour the same at both).
    static let calmNanoseconds = 10_000_000

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when a loop starts (helpers wait on it) and when its last task ends (the caller waits).
    private let started = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let ended = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // The current loop: its body (nil when the pool is idle), its number, number of tasks, the next
    // unclaimed task, tasks finished, helpers allowed and joined. The caller sets them under `mutex`.
    // Spinning threads read `generation` and `done` without it, and tasks are claimed without it
    // from `cursor`, which packs the loop's number (its low 31 bits, from bit 32 up) with the next
    // unclaimed task, so that a claim that lands after its loop ended fails.
    private var body: ((Int) -> Void)?
    private let generation = Atomic<Int>(0)
    private let count = Atomic<Int>(0)
    private let cursor = Atomic<Int>(0)
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
            (allowed, joined) = (allow, 0)
            done.store(0, ordering: .releasing)
            // The cursor moves to the new loop before the count changes: a late claim on the last
            // loop that reads the new count then finds the cursor moved and fails.
            let loop = generation.load(ordering: .relaxed) + 1
            cursor.store(Self.packed(loop: loop, task: 0), ordering: .releasing)
            self.count.store(count, ordering: .releasing)
            generation.store(loop, ordering: .releasing)
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
        if finishedOne, done.add(1, ordering: .releasing).newValue == count.load(ordering: .relaxed) {
            pthread_mutex_lock(mutex)
            pthread_cond_signal(ended)
            pthread_mutex_unlock(mutex)
        }
        // A claimed task keeps its loop from ending, so `count` and `body` stay this loop's.
        guard let task = claim(of: loop), let body else { return false }
        body(task)
        return true
    }

    /// The next unclaimed task of `loop`, taken with a compare-and-swap on `cursor`; nil when the
    /// loop has none left or has ended.
    private func claim(of loop: Int) -> Int? {
        var seen = cursor.load(ordering: .acquiring)
        while isUnclaimed(seen, of: loop) {
            let (claimed, now) = cursor.compareExchange(
                expected: seen, desired: seen + 1, successOrdering: .acquiring, failureOrdering: .acquiring)
            if claimed { return seen & Self.taskMask }
            seen = now
        }
        return nil
    }

    /// Bits of `cursor` holding the next task.
    private static let taskMask = (1 << 32) - 1

    /// `cursor`'s value for `task` of `loop`.
    private static func packed(loop: Int, task: Int) -> Int { (loop & 0x7fff_ffff) << 32 | task }

    /// Whether `cursor`'s value `seen` names an unclaimed task of `loop`.
    private func isUnclaimed(_ seen: Int, of loop: Int) -> Bool {
        seen == Self.packed(loop: loop, task: seen & Self.taskMask)
            && seen & Self.taskMask < count.load(ordering: .acquiring)
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
            let join = body != nil && joined < allowed && isUnclaimed(cursor.load(ordering: .acquiring), of: seen)
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
