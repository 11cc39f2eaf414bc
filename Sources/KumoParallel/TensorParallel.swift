import KumoComm
import KumoCore
import KumoModel

/// The collectives of a tensor-parallel model over a communicator of its tensor group (named
/// `tp`, so its counters appear as `comm.tp.*`).
public final class TensorParallelGroup: TensorParallelOps {
    /// The tensor group.
    public let group: any Communicator

    public let sequenceParallel: Bool

    /// Communicates over `group`; with `sequenceParallel` the model splits its residual rows over it.
    public init(group: any Communicator, sequenceParallel: Bool) {
        self.group = group
        self.sequenceParallel = sequenceParallel
    }

    public var rank: Int { group.rank }
    public var size: Int { group.size }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        group.allReduce(buffer, count: count, op: .sum)
    }

    public func allReduceMax(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        group.allReduce(buffer, count: count, op: .max)
    }

    public func allGather(
        _ local: UnsafePointer<Float>, into whole: UnsafeMutablePointer<Float>, countPerRank count: Int
    ) {
        group.allGather(local, whole, countPerRank: count)
    }

    public func reduceScatter(
        _ whole: UnsafePointer<Float>, into local: UnsafeMutablePointer<Float>, countPerRank count: Int
    ) {
        group.reduceScatter(whole, local, countPerRank: count, op: .sum)
    }
}

/// The gradient bookkeeping tensor parallelism adds before data parallelism: pieces that several
/// tensor ranks hold identical copies of (key/value heads replicated over `kvReplicas` ranks)
/// get their gradients summed over those ranks, and the gradient norm counts every piece once.
public final class TensorParallelGradients {
    /// The shard's layout.
    public let layout: ParameterLayout
    /// The tensor group.
    public let group: any Communicator
    /// The ranks of the tensor group that hold the same key/value heads (nil when they are split).
    public let kvGroup: (any Communicator)?
    /// Whether norm weights see only part of the rows (sequence parallelism) and need their
    /// gradients summed over the tensor group.
    public let sumsNormGradients: Bool
    private let summed: [ParameterTensor]

    /// Collective over `group`: forms the key/value replica groups when the shard replicates them.
    public init(layout: ParameterLayout, group: any Communicator, sequenceParallel: Bool) {
        self.layout = layout
        self.group = group
        sumsNormGradients = sequenceParallel
        let replicas = layout.shard.kvReplicas(layout.config)
        kvGroup =
            replicas > 1
            ? group.split(color: layout.shard.tensorRank / replicas, key: group.rank, name: "tp_kv") : nil
        summed = layout.tensors.filter { $0.replicas > 1 && ($0.shape.count > 1 || sequenceParallel) }
    }

    /// The groups whose counters belong in the metrics.
    public var groups: [any Communicator] { [group] + (kvGroup.map { [$0] } ?? []) }

    /// Sums the gradients of replicated pieces inside `range` over the ranks holding them; call
    /// it with each range backward reports ready, before data parallelism reads the range.
    public func gradientsReady(_ range: Range<Int>, grads: UnsafeMutablePointer<Float>) {
        for t in summed where range.contains(t.offset) {
            let g = t.shape.count > 1 ? kvGroup : group
            g?.allReduce(grads + t.offset, count: t.count, op: .sum)
        }
    }

    /// The squared L2 norm of the gradients of the model part the tensor group holds, from this
    /// shard's `grads`: squares summed over the tensor group, each replicated piece counted once.
    public func sumOfSquares(_ grads: UnsafePointer<Float>) -> Double {
        var squares = [
            layout.tensors.reduce(0.0) { sum, t in
                sum + AdamWKernel.sumOfSquares(grads + t.offset, count: t.count) / Double(t.replicas)
            }
        ]
        group.allReduce(&squares, op: .sum)
        return squares[0]
    }
}
