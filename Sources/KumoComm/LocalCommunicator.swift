/// The group of one process: collectives copy or do nothing, and messages to self are queued.
/// Used when Kumo runs without an MPI launcher.
public final class LocalCommunicator: Communicator {
    public let rank = 0
    public let size = 1
    public let name: String
    public let counters: CommCounters
    private var mailbox: [Int: [[Float]]] = [:]
    private var pendingReceives: [(tag: Int, buffer: UnsafeMutablePointer<Float>, count: Int, request: CommRequest)] =
        []

    /// A one-rank group called `name`.
    public init(name: String = "world") {
        self.name = name
        counters = CommCounters(group: name)
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) {
        counters.count("allreduce", bytes: 4 * count)
    }

    public func allReduce(_ values: inout [Double], op: ReduceOp) {
        counters.count("allreduce", bytes: 8 * values.count)
    }

    public func startAllReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) -> CommRequest {
        counters.count("allreduce", bytes: 4 * count)
        return CommRequest(op: "allreduce", bytes: 4 * count, isComplete: true)
    }

    public func reduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int, op: ReduceOp
    ) {
        counters.count("reducescatter", bytes: 4 * count)
        receive.update(from: send, count: count)
    }

    public func startReduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, counts: [Int], op: ReduceOp
    ) -> CommRequest {
        precondition(counts.count == 1, "\(counts.count) counts for a one-rank group")
        counters.count("reducescatter", bytes: 4 * counts[0])
        receive.update(from: send, count: counts[0])
        return CommRequest(op: "reducescatter", bytes: 4 * counts[0], isComplete: true)
    }

    public func allGather(_ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int)
    {
        counters.count("allgather", bytes: 4 * count)
        receive.update(from: send, count: count)
    }

    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        precondition(counts.count == 1, "\(counts.count) counts for a one-rank group")
        counters.count("allgather", bytes: 4 * counts[0])
    }

    public func startAllGatherInPlace(_ buffer: UnsafeMutableRawPointer, counts: [Int], elementBytes: Int)
        -> CommRequest
    {
        precondition(counts.count == 1, "\(counts.count) counts for a one-rank group")
        counters.count("allgather", bytes: elementBytes * counts[0])
        return CommRequest(op: "allgather", bytes: elementBytes * counts[0], isComplete: true)
    }

    public func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int]
    ) {
        precondition(sendCounts == receiveCounts && sendCounts.count == 1, "all-to-all counts for a one-rank group")
        counters.count("alltoall", bytes: 4 * sendCounts[0])
        receive.update(from: send, count: sendCounts[0])
    }

    public func allGatherBytes(_ send: [UInt8]) -> [[UInt8]] { [send] }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        precondition(root == 0, "broadcast root \(root) outside a one-rank group")
        counters.count("broadcast", bytes: 4 * count)
    }

    public func barrier() { counters.count("barrier", bytes: 0) }

    public func send(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) {
        wait(startSend(buffer, count: count, to: to, tag: tag))
    }

    public func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) {
        wait(startReceive(buffer, count: count, from: from, tag: tag))
    }

    public func startSend(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) -> CommRequest {
        precondition(to == 0, "send to rank \(to) outside a one-rank group")
        counters.count("send", bytes: 4 * count)
        if let i = pendingReceives.firstIndex(where: { $0.tag == tag }) {
            let r = pendingReceives.remove(at: i)
            precondition(r.count == count, "receive of \(r.count) floats matched a send of \(count)")
            r.buffer.update(from: buffer, count: count)
            r.request.isComplete = true
        } else {
            mailbox[tag, default: []].append(Array(UnsafeBufferPointer(start: buffer, count: count)))
        }
        return CommRequest(op: "send", bytes: 4 * count, isComplete: true)
    }

    public func startReceive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) -> CommRequest {
        precondition(from == 0, "receive from rank \(from) outside a one-rank group")
        counters.count("recv", bytes: 4 * count)
        let request = CommRequest(op: "recv", bytes: 4 * count, isComplete: false)
        if var queue = mailbox[tag], !queue.isEmpty {
            let message = queue.removeFirst()
            mailbox[tag] = queue
            precondition(message.count == count, "receive of \(count) floats matched a send of \(message.count)")
            message.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: count) }
            request.isComplete = true
        } else {
            pendingReceives.append((tag, buffer, count, request))
        }
        return request
    }

    public func test(_ request: CommRequest) -> Bool { request.isComplete }

    public func wait(_ request: CommRequest) {
        precondition(request.isComplete, "waiting on a \(request.op) that no send of this process can complete")
    }

    public func split(color: Int, key: Int, name: String) -> any Communicator { LocalCommunicator(name: name) }

    public func noteStep(_ step: Int) {}
}
