import KumoComm
import KumoCore
import KumoModel

/// How the gradients of a bucket are summed over the data-parallel group.
public enum GradientReduction {
    /// Every rank receives the whole sum, in place in the model's gradient buffer (plain data
    /// parallelism, ZeRO-1), once per step.
    case allReduce(FloatBuffer)
    /// Each rank of the shard group receives only the sum over its own range, into its shard,
    /// every micro-batch (ZeRO-2 and 3: the model keeps no whole gradient buffer).
    case reduceScatter(ShardedGradients)
}

/// Data parallelism: gradients are summed over the data-parallel group in buckets, each
/// all-reduce or reduce-scatter started (non-blocking) as soon as backward has finished the
/// bucket's ranges, so communication overlaps the rest of backward. Averaging over the global
/// batch is the loss scale's job (1 / tokens of the global batch).
public final class DataParallel {
    /// The data-parallel group.
    public let group: any Communicator
    /// The buckets, in launch order.
    public let buckets: GradientBuckets
    /// Whether buckets are all-reduced or reduce-scattered.
    public let reduction: GradientReduction
    /// Under expert parallelism: the ranks holding the same experts, over which the experts'
    /// buckets are summed (the expert group's other ranks hold other experts).
    public let expertData: (any Communicator)?
    private let expertRanges: [Range<Int>]
    /// Buckets launched in the pass being synchronised, and the requests of those with a group to sum over.
    private var launched = 0
    private var requests: [(group: any Communicator, request: CommRequest)] = []
    /// Lowest offset whose gradients are final in the pass being synchronised.
    private var readyFrom = 0
    private var syncing = false

    /// All-reduces `grads` (laid out by `layout`) over `group` in buckets of about `bucketBytes`;
    /// the buckets of a mixture's experts over `expertData` when given (expert parallelism).
    public init(
        layout: ParameterLayout, grads: FloatBuffer, group: any Communicator, expertData: (any Communicator)? = nil,
        bucketBytes: Int
    ) {
        self.group = group
        self.expertData = expertData
        expertRanges = expertData == nil ? [] : layout.expertRanges
        reduction = .allReduce(grads)
        buckets = GradientBuckets(layout: layout, targetFloats: max(1, bucketBytes / 4))
    }

    /// Reduce-scatters into `sharded`'s shard (`group` is the whole data-parallel group).
    public init(sharded: ShardedGradients, group: any Communicator) {
        self.group = group
        reduction = .reduceScatter(sharded)
        buckets = sharded.buckets
        expertData = nil
        expertRanges = []
    }

    /// The group bucket `b` is summed over.
    private func group(of b: Range<Int>) -> any Communicator {
        guard let expertData, expertRanges.contains(where: { $0.contains(b.lowerBound) }) else { return group }
        return expertData
    }

    /// The shard of ZeRO-2 and 3 (nil when gradients are all-reduced).
    public var sharded: ShardedGradients? {
        if case .reduceScatter(let s) = reduction { return s }
        return nil
    }

    /// Whether every micro-batch's backward communicates (sharded gradients have nowhere to
    /// accumulate locally), rather than only the last one of a step.
    public var reducesEveryMicroBatch: Bool { sharded != nil }

    /// Arms synchronisation for the next backward pass.
    public func beginSync() {
        precondition(!syncing, "beginSync called twice without finishSync")
        syncing = true
        switch reduction {
        case .allReduce(let grads):
            readyFrom = grads.count
            launched = 0
            requests = []
        case .reduceScatter(let s): s.beginPass()
        }
    }

    /// Backward reports that gradients in `range` are final: starts every bucket now complete
    /// and lets earlier ones progress.
    public func gradientsReady(_ range: Range<Int>) {
        guard syncing else { return }
        guard case .allReduce(let grads) = reduction else {
            sharded?.gradientsReady(range)
            return
        }
        precondition(range.upperBound == readyFrom, "gradient ranges must arrive from the top of the buffer down")
        readyFrom = range.lowerBound
        while launched < buckets.ranges.count, buckets.ranges[launched].lowerBound >= readyFrom {
            let b = buckets.ranges[launched]
            launched += 1
            // A one-rank group (tensor or pipeline parallelism without data parallelism) holds the sum.
            let g = group(of: b)
            if g.size > 1 {
                requests.append((g, g.startAllReduce(grads.pointer + b.lowerBound, count: b.count, op: .sum)))
            }
        }
        for (g, r) in requests where !r.isComplete { _ = g.test(r) }
    }

    /// Waits for every bucket of the pass; after the last pass of a step each rank holds the
    /// summed gradients (all of them, or its shard's).
    public func finishSync(lastOfStep: Bool = true) {
        precondition(syncing, "finishSync without beginSync")
        syncing = false
        switch reduction {
        case .allReduce:
            precondition(
                readyFrom == 0 && launched == buckets.ranges.count, "backward did not report every gradient range")
            for (g, r) in requests { g.wait(r) }
            requests = []
        case .reduceScatter(let s): s.finishPass(lastOfStep: lastOfStep)
        }
    }
}
