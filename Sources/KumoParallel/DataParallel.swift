import KumoComm
import KumoCore
import KumoModel

/// Data parallelism: every rank holds the whole model; gradients are summed over the
/// data-parallel group in buckets, each all-reduce started (non-blocking) as soon as backward
/// has finished the bucket's ranges, so communication overlaps the rest of backward.
/// Averaging over the global batch is the loss scale's job (1 / tokens of the global batch).
public final class DataParallel {
    /// The data-parallel group.
    public let group: any Communicator
    /// The buckets, in launch order.
    public let buckets: GradientBuckets
    private let grads: FloatBuffer
    private var requests: [CommRequest] = []
    /// Lowest offset whose gradients are final in the pass being synchronised.
    private var readyFrom = 0
    private var syncing = false

    /// Synchronises `grads` (laid out by `layout`) over `group` in buckets of about `bucketBytes`.
    public init(layout: ParameterLayout, grads: FloatBuffer, group: any Communicator, bucketBytes: Int) {
        self.group = group
        self.grads = grads
        buckets = GradientBuckets(layout: layout, targetFloats: max(1, bucketBytes / 4))
    }

    /// Arms synchronisation for the next backward pass (the last micro-batch of a step).
    public func beginSync() {
        precondition(!syncing, "beginSync called twice without finishSync")
        syncing = true
        readyFrom = grads.count
        requests = []
    }

    /// Backward reports that gradients in `range` are final: starts every bucket now complete
    /// and lets earlier ones progress.
    public func gradientsReady(_ range: Range<Int>) {
        guard syncing else { return }
        precondition(range.upperBound == readyFrom, "gradient ranges must arrive from the top of the buffer down")
        readyFrom = range.lowerBound
        while requests.count < buckets.ranges.count, buckets.ranges[requests.count].lowerBound >= readyFrom {
            let b = buckets.ranges[requests.count]
            requests.append(group.startAllReduce(grads.pointer + b.lowerBound, count: b.count, op: .sum))
        }
        for r in requests where !r.isComplete { _ = group.test(r) }
    }

    /// Waits for every bucket; afterwards each rank holds the summed gradients.
    public func finishSync() {
        precondition(syncing, "finishSync without beginSync")
        precondition(requests.count == buckets.ranges.count, "backward did not report every gradient range")
        for r in requests { group.wait(r) }
        requests = []
        syncing = false
    }
}
