/// Tasks per thread a loop is cut into: enough that a thread the OS deschedules holds a small
/// share of the loop while the others take the rest, few enough that claiming them costs little.
let tasksPerThread = 8

/// Runs `body(i)` for i in 0..<count on up to `Threads.current` threads of Kumo's pool, in
/// contiguous chunks that free threads claim one after another; each index runs exactly once, so
/// results do not depend on the thread count when bodies write disjoint memory.
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    parallelChunks(count, tasks: Threads.current * tasksPerThread) { lo, hi in
        for i in lo..<hi { body(i) }
    }
}

/// Bytes of weights a task of `parallelRows` reads: a few microseconds from memory, so that the
/// threads of a loop end within a task of each other and the caller's wait for the last one stays
/// within the pool's spin.
public let rowTaskBytes = 64 << 10

/// Runs `body(lo, hi)` over 0..<rows on up to `Threads.current` threads, in tasks of about
/// `rowTaskBytes` of rows of `rowBytes` each, claimed one after another by free threads: for the
/// matrix-vector products of decoding, which stream the rows from memory.
public func parallelRows(_ rows: Int, rowBytes: Int, _ body: (Int, Int) -> Void) {
    let perTask = max(1, rowTaskBytes / max(rowBytes, 1))
    let tasks = (rows + perTask - 1) / perTask
    let threads = Threads.current
    if threads > 1 && tasks > 1
        && ThreadPool.shared.run(tasks, helpers: threads - 1, { t in body(t * perTask, min(rows, (t + 1) * perTask)) })
    {
        return
    }
    body(0, rows)
}

/// Runs `body(i)` for i in 0..<count on up to `Threads.current` threads, handing out one index at a
/// time, so uneven items (documents of very different lengths) keep every thread busy; each index
/// runs exactly once.
public func parallelForEachDynamic(_ count: Int, _ body: (Int) -> Void) {
    let threads = Threads.current
    if threads > 1 && count > 1 && ThreadPool.shared.run(count, helpers: threads - 1, body) { return }
    for i in 0..<count { body(i) }
}

/// Splits 0..<count into at most `tasks` contiguous ranges whose inner bounds are multiples of
/// `align` and runs `body(lo, hi)` for each on the pool, or `body(0, count)` once on this thread
/// when there is one range, one thread, or the pool is busy (a call from inside a task).
public func parallelChunks(_ count: Int, tasks: Int, align: Int = 1, _ body: (Int, Int) -> Void) {
    let threads = Threads.current
    let pieces = min(tasks, count / align)
    if threads > 1 && pieces > 1 {
        func bound(_ p: Int) -> Int { p == pieces ? count : count * p / pieces / align * align }
        if ThreadPool.shared.run(pieces, helpers: threads - 1, { p in body(bound(p), bound(p + 1)) }) { return }
    }
    body(0, count)
}

/// Runs `body(lo, hi)` over slices of `dim` columns, 16 apart (one cache line), in parallel: for
/// reductions over rows in which each task adds every row's slice in row order.
public func parallelColumns(_ dim: Int, _ body: (Int, Int) -> Void) {
    parallelChunks(dim, tasks: Threads.current * tasksPerThread, align: 16, body)
}
