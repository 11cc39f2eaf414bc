import KumoComm
import KumoCore
import KumoModel

/// How the gradients of a bucket are summed over the data-parallel group.
public enum GradientReduction {
    /// Every rank receives the whole sum, in place (plain data parallelism, ZeRO-1).
    case allReduce
    /// Each rank of `shardGroup` receives only the sum over its own range of `partition`, into
    /// `shard` (which holds that range, offset by its start): ZeRO-2 and 3. With hybrid
    /// sharding the shards are then all-reduced over `replicas` (the ranks at the same position
    /// in every shard group).
    case reduceScatter(ZeROPartition, shard: FloatBuffer, shardGroup: any Communicator, replicas: (any Communicator)?)
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
    private let grads: FloatBuffer
    /// The group buckets are reduced in: the data-parallel group, or the shard group.
    private let bucketGroup: any Communicator
    private var requests: [CommRequest] = []
    /// Lowest offset whose gradients are final in the pass being synchronised.
    private var readyFrom = 0
    private var syncing = false

    /// Synchronises `grads` (laid out by `layout`) over `group` in buckets of about `bucketBytes`.
    public init(
        layout: ParameterLayout, grads: FloatBuffer, group: any Communicator, bucketBytes: Int,
        reduction: GradientReduction = .allReduce
    ) {
        self.group = group
        self.grads = grads
        self.reduction = reduction
        if case .reduceScatter(_, _, let shardGroup, _) = reduction {
            bucketGroup = shardGroup
        } else {
            bucketGroup = group
        }
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
            requests.append(start(buckets.ranges[requests.count]))
        }
        for r in requests where !r.isComplete { _ = bucketGroup.test(r) }
    }

    private func start(_ b: Range<Int>) -> CommRequest {
        switch reduction {
        case .allReduce:
            return bucketGroup.startAllReduce(grads.pointer + b.lowerBound, count: b.count, op: .sum)
        case .reduceScatter(let partition, let shard, let shardGroup, _):
            // The bucket's pieces in rank order: each rank's range clamped to the bucket.
            let pieces = (0..<shardGroup.size).map { partition.range(of: $0).clamped(to: b) }
            let mine = partition.range(of: shardGroup.rank)
            let into = pieces[shardGroup.rank].isEmpty ? 0 : pieces[shardGroup.rank].lowerBound - mine.lowerBound
            return shardGroup.startReduceScatter(
                grads.pointer + b.lowerBound, shard.pointer + into, counts: pieces.map(\.count), op: .sum)
        }
    }

    /// Waits for every bucket; afterwards each rank holds the summed gradients (all of them, or
    /// its shard's).
    public func finishSync() {
        precondition(syncing, "finishSync without beginSync")
        precondition(requests.count == buckets.ranges.count, "backward did not report every gradient range")
        for r in requests { bucketGroup.wait(r) }
        requests = []
        syncing = false
        if case .reduceScatter(_, let shard, _, let replicas?) = reduction {
            replicas.allReduce(shard.pointer, count: shard.count, op: .sum)
        }
    }
}
