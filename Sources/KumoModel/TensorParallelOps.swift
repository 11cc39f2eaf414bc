/// The collectives a tensor-parallel model calls at Megatron's points, over the ranks that hold
/// the other shards of its layers (the tensor group). The model knows no ranks: the trainer
/// injects an implementation; without one the model is whole and communicates nothing.
public protocol TensorParallelOps: AnyObject {
    /// This rank's index in the tensor group.
    var rank: Int { get }
    /// Ranks in the tensor group.
    var size: Int { get }
    /// Whether the residual stream and norms are split by rows over the group (sequence parallelism).
    var sequenceParallel: Bool { get }
    /// Sums `buffer[0..<count]` over the tensor group, in place on every rank.
    func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Replaces `buffer[0..<count]` with its element-wise maximum over the tensor group.
    func allReduceMax(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Concatenates every rank's `local[0..<count]` in rank order into `whole[0..<count·size]`.
    func allGather(_ local: UnsafePointer<Float>, into whole: UnsafeMutablePointer<Float>, countPerRank count: Int)
    /// Sums `whole[0..<count·size]` over the group and leaves block `rank` (of `count` floats) in `local`.
    func reduceScatter(_ whole: UnsafePointer<Float>, into local: UnsafeMutablePointer<Float>, countPerRank count: Int)
}
