import Dispatch
import Foundation

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

/// Runs `body(i)` for i in 0..<count on up to `Threads.current` threads, handing out one index at a
/// time, so uneven items (documents of very different lengths) keep every thread busy; each index
/// runs exactly once.
public func parallelForEachDynamic(_ count: Int, _ body: (Int) -> Void) {
    let workers = min(Threads.current, count)
    if workers <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    let lock = NSLock()
    var next = 0
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                if i >= count { return }
                body(i)
            }
        }
    }
}
