import Foundation

@testable import KumoModel

/// A tensor group of threads in one process, for in-process tests of tensor-parallel code: each
/// rank's collective posts its buffer, waits for all ranks, and combines them in rank order.
final class ThreadTensorGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var slots: [[Float]]

    init(size: Int) {
        self.size = size
        slots = Array(repeating: [], count: size)
    }

    /// Runs `body(rank)` on `size` threads at once and returns when all have finished.
    func run(_ body: @escaping (Int) -> Void) {
        let done = DispatchGroup()
        for rank in 0..<size {
            done.enter()
            Thread {
                body(rank)
                done.leave()
            }.start()
        }
        done.wait()
    }

    private func barrier() {
        condition.lock()
        let g = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while g == generation { condition.wait() }
        }
        condition.unlock()
    }

    /// Every rank's `buffer[0..<count]`, in rank order.
    fileprivate func exchange(rank: Int, _ buffer: UnsafePointer<Float>, count: Int) -> [[Float]] {
        condition.lock()
        slots[rank] = Array(UnsafeBufferPointer(start: buffer, count: count))
        condition.unlock()
        barrier()
        condition.lock()
        let all = slots
        condition.unlock()
        barrier()
        return all
    }

    /// The collectives of rank `rank`.
    func ops(rank: Int, sequenceParallel: Bool = false) -> any TensorParallelOps {
        ThreadTensorOps(group: self, rank: rank, sequenceParallel: sequenceParallel)
    }
}

private final class ThreadTensorOps: TensorParallelOps {
    let group: ThreadTensorGroup
    let rank: Int
    let sequenceParallel: Bool
    var size: Int { group.size }

    init(group: ThreadTensorGroup, rank: Int, sequenceParallel: Bool) {
        self.group = group
        self.rank = rank
        self.sequenceParallel = sequenceParallel
    }

    private func combine(_ buffer: UnsafeMutablePointer<Float>, count: Int, _ op: (Float, Float) -> Float) {
        let all = group.exchange(rank: rank, buffer, count: count)
        for i in 0..<count { buffer[i] = all.dropFirst().reduce(all[0][i]) { op($0, $1[i]) } }
    }

    func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int) { combine(buffer, count: count, +) }

    func allReduceMax(_ buffer: UnsafeMutablePointer<Float>, count: Int) { combine(buffer, count: count, max) }

    func allGather(_ local: UnsafePointer<Float>, into whole: UnsafeMutablePointer<Float>, countPerRank count: Int) {
        let all = group.exchange(rank: rank, local, count: count)
        for (r, piece) in all.enumerated() { (whole + r * count).update(from: piece, count: count) }
    }

    func reduceScatter(
        _ whole: UnsafePointer<Float>, into local: UnsafeMutablePointer<Float>, countPerRank count: Int
    ) {
        let all = group.exchange(rank: rank, whole, count: count * size)
        for i in 0..<count { local[i] = all.dropFirst().reduce(all[0][rank * count + i]) { $0 + $1[rank * count + i] } }
    }
}
