/// A reduction applied element-wise by all-reduce and reduce-scatter.
public enum ReduceOp: String, Sendable {
    case sum, max, min
}

/// A non-blocking operation in flight; complete it with `Communicator.wait(_:)`.
public final class CommRequest {
    /// The collective or point-to-point operation, for counters and timeout messages (e.g. `allreduce`).
    public let op: String
    /// Bytes this rank contributes to the operation.
    public let bytes: Int
    /// Monotonic time the operation was launched.
    let started: Double
    /// The MPI request handle of an operation in flight.
    var handle: OpaquePointer?
    /// Whether the operation has completed (its buffers may be used).
    public internal(set) var isComplete: Bool
    /// Count arrays MPI reads until the operation completes (variable-size collectives).
    var counts: UnsafeMutableBufferPointer<Int32>?

    init(op: String, bytes: Int, handle: OpaquePointer? = nil, isComplete: Bool) {
        self.op = op
        self.bytes = bytes
        self.handle = handle
        self.isComplete = isComplete
        started = CommClock.now()
    }

    deinit { counts?.deallocate() }
}

/// A group of ranks that exchange fp32 buffers: collectives, point-to-point messages and
/// sub-groups. Every rank of the group must call a collective with matching arguments.
public protocol Communicator: AnyObject {
    /// This process's index in the group, 0..<size.
    var rank: Int { get }
    /// Ranks in the group.
    var size: Int { get }
    /// The group's name in counters and error messages (`world`, `dp`, ...).
    var name: String { get }
    /// Calls, bytes and seconds per operation of this group.
    var counters: CommCounters { get }

    /// Replaces `buffer[0..<count]` on every rank with the element-wise reduction over ranks.
    func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp)
    /// All-reduce of a few fp64 scalars (losses, token counts).
    func allReduce(_ values: inout [Double], op: ReduceOp)
    /// Starts an in-place all-reduce; the buffer must not be touched until `wait`.
    func startAllReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) -> CommRequest
    /// Reduces `send[0..<count·size]` over ranks and leaves chunk `rank` (of `count` floats) in `receive`.
    func reduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int, op: ReduceOp)
    /// Starts a reduction of `send[0..<counts.sum()]` over ranks that leaves rank r's piece
    /// (`counts[r]` floats at offset `counts[0..<r].sum()`) in its `receive`; neither buffer may
    /// be touched until `wait`.
    func startReduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, counts: [Int], op: ReduceOp
    ) -> CommRequest
    /// Concatenates every rank's `send[0..<count]` in rank order into `receive[0..<count·size]`.
    func allGather(_ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int)
    /// In place: rank r's `counts[r]` floats, at offset `counts[0..<r].sum()` of `buffer`, reach every rank.
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// Starts `allGatherInPlace` of `elementBytes`-byte elements (4: fp32; 1: encoded bytes);
    /// the buffer must not be touched until `wait`.
    func startAllGatherInPlace(_ buffer: UnsafeMutableRawPointer, counts: [Int], elementBytes: Int) -> CommRequest
    /// All-to-all with per-rank counts: `sendCounts[r]` floats of `send` (in rank order) go to rank
    /// r, and `receiveCounts[r]` floats from rank r land in `receive` (in rank order).
    func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int])
    /// Concatenates every rank's bytes in rank order (for start-up checks).
    func allGatherBytes(_ send: [UInt8]) -> [[UInt8]]
    /// Copies `root`'s `buffer[0..<count]` to every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int)
    /// Returns once every rank of the group has called it.
    func barrier()
    /// Sends `buffer[0..<count]` to rank `to`; returns once the buffer may be reused.
    func send(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int)
    /// Receives `count` floats from rank `from` into `buffer`.
    func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int)
    /// Starts a send; the buffer must not change until `wait`.
    func startSend(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) -> CommRequest
    /// Starts a receive; the buffer holds the message after `wait`.
    func startReceive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) -> CommRequest
    /// Lets pending non-blocking operations progress; true when `request` has completed.
    func test(_ request: CommRequest) -> Bool
    /// Blocks until `request` completes (or the collective timeout aborts the job).
    func wait(_ request: CommRequest)
    /// Splits the group: ranks with the same `color` form a new group, ordered by `key`.
    func split(color: Int, key: Int, name: String) -> any Communicator
    /// Records the training step, named in timeout messages.
    func noteStep(_ step: Int)
}
