import Foundation

/// Kumo's one pool of worker threads, shared by its own kernels and by GEMM (OpenBLAS runs
/// single-threaded inside the pool's tasks, see `gemm`). The calling thread and up to
/// `Threads.current - 1` helpers run the tasks of one loop, each task claimed by whichever thread
/// is free, so a thread the OS deschedules (a busy neighbour on its core) delays the loop by at
/// most the task it holds. Idle helpers sleep on a condition variable: nothing spins.
final class ThreadPool: @unchecked Sendable {
    /// The process's pool.
    static let shared = ThreadPool()

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when a loop starts (helpers wait on it) and when its last task ends (the caller waits).
    private let started = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let ended = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // The current loop, all guarded by `mutex`: its body (nil when the pool is idle), number
    // of tasks, the next unclaimed task, tasks finished, helpers allowed and joined.
    private var body: ((Int) -> Void)?
    private var generation = 0
    private var count = 0
    private var next = 0
    private var done = 0
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
            (next, done, allowed, joined) = (0, 0, allow, 0)
            generation += 1
            let loop = generation
            for _ in 0..<allow { pthread_cond_signal(started) }
            pthread_mutex_unlock(mutex)
            work(loop)
            pthread_mutex_lock(mutex)
            while done < count { pthread_cond_wait(ended, mutex) }
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
        if finishedOne {
            done += 1
            if done == count { pthread_cond_signal(ended) }
        }
        guard generation == loop, next < count, let body else {
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

    /// A helper's life: sleep until a loop starts, join it if it still wants helpers, repeat.
    private func helperLoop() {
        var seen = 0
        while true {
            pthread_mutex_lock(mutex)
            while generation == seen { pthread_cond_wait(started, mutex) }
            seen = generation
            let join = body != nil && joined < allowed && next < count
            if join { joined += 1 }
            pthread_mutex_unlock(mutex)
            if join { work(seen) }
        }
    }
}
