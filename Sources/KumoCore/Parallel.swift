import Dispatch

/// Runs `body(i)` for i in 0..<count on up to `Threads.current` threads, in contiguous
/// chunks; each index runs exactly once, so results are deterministic when bodies write
/// disjoint memory.
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    let workers = min(Threads.current, count)
    if workers <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = count * w / workers
            let hi = count * (w + 1) / workers
            for i in lo..<hi { body(i) }
        }
    }
}
