/// A group whose ranks span several hosts, the same number (more than one) on each, that all-reduces
/// in three steps: reduce-scatter inside each host (`intra_host`, shared memory), all-reduce of each
/// rank's piece across hosts (`inter_host`: one piece per rank instead of the whole buffer through
/// the ring), all-gather inside each host. Every other operation is the flat group's. Counters of
/// the two levels appear as `comm.intra_host.*` and `comm.inter_host.*`.
public final class HierarchicalGroup: Communicator {
    public let flat: any Communicator
    public let intraHost: any Communicator
    public let interHost: any Communicator
    /// The all-reduces started and not yet waited for: their buffer, pieces and this rank's piece.
    private var pending: [ObjectIdentifier: Pending] = [:]

    private struct Pending {
        let buffer: UnsafeMutablePointer<Float>
        let counts: [Int]
        let piece: UnsafeMutablePointer<Float>
        let op: ReduceOp
    }

    private init(flat: any Communicator, intraHost: any Communicator, interHost: any Communicator) {
        self.flat = flat
        self.intraHost = intraHost
        self.interHost = interHost
    }

    /// `group` made hierarchical when its ranks (on `hosts`, by group rank) span several hosts with the
    /// same number above one on each; nil otherwise (a flat all-reduce is then as good). Every rank of
    /// `group` must call it with the same `hosts`.
    public static func make(_ group: any Communicator, hosts: [String]) -> HierarchicalGroup? {
        precondition(hosts.count == group.size, "\(hosts.count) hosts for a group of \(group.size)")
        let topology = HostTopology(hosts: hosts)
        let perHost = topology.ranksByHost.map(\.ranks.count)
        guard perHost.count > 1, perHost[0] > 1, Set(perHost).count == 1,
            let index = topology.hostOrder.firstIndex(of: hosts[group.rank])
        else { return nil }
        let intra = group.split(color: index, key: group.rank, name: "intra_host")
        let inter = group.split(color: intra.rank, key: group.rank, name: "inter_host")
        return HierarchicalGroup(flat: group, intraHost: intra, interHost: inter)
    }

    /// The two levels, whose counters belong in the metrics.
    public var levels: [any Communicator] { [intraHost, interHost] }

    public var rank: Int { flat.rank }
    public var size: Int { flat.size }
    public var name: String { flat.name }
    public var counters: CommCounters { flat.counters }

    /// `count` split into one piece per rank of the host, the first ones a float longer.
    private func pieces(_ count: Int) -> [Int] {
        (0..<intraHost.size).map { count / intraHost.size + ($0 < count % intraHost.size ? 1 : 0) }
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) {
        wait(startAllReduce(buffer, count: count, op: op))
    }

    public func allReduce(_ values: inout [Double], op: ReduceOp) { flat.allReduce(&values, op: op) }

    public func startAllReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) -> CommRequest {
        let counts = pieces(count)
        let piece = UnsafeMutablePointer<Float>.allocate(capacity: max(counts[intraHost.rank], 1))
        let request = intraHost.startReduceScatter(buffer, piece, counts: counts, op: op)
        pending[ObjectIdentifier(request)] = Pending(buffer: buffer, counts: counts, piece: piece, op: op)
        return request
    }

    public func wait(_ request: CommRequest) {
        guard let p = pending.removeValue(forKey: ObjectIdentifier(request)) else { return flat.wait(request) }
        intraHost.wait(request)
        let mine = p.counts[intraHost.rank]
        interHost.allReduce(p.piece, count: mine, op: p.op)
        (p.buffer + p.counts[..<intraHost.rank].reduce(0, +)).update(from: p.piece, count: mine)
        p.piece.deallocate()
        intraHost.allGatherInPlace(p.buffer, counts: p.counts)
    }

    public func test(_ request: CommRequest) -> Bool {
        guard pending[ObjectIdentifier(request)] != nil else { return flat.test(request) }
        // The first step progresses; the other two run in `wait`.
        _ = intraHost.test(request)
        return false
    }

    public func reduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int, op: ReduceOp
    ) { flat.reduceScatter(send, receive, countPerRank: count, op: op) }

    public func startReduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, counts: [Int], op: ReduceOp
    ) -> CommRequest { flat.startReduceScatter(send, receive, counts: counts, op: op) }

    public func allGather(_ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int)
    {
        flat.allGather(send, receive, countPerRank: count)
    }

    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        flat.allGatherInPlace(buffer, counts: counts)
    }

    public func startAllGatherInPlace(_ buffer: UnsafeMutableRawPointer, counts: [Int], elementBytes: Int)
        -> CommRequest
    { flat.startAllGatherInPlace(buffer, counts: counts, elementBytes: elementBytes) }

    public func allGatherBytes(_ send: [UInt8]) -> [[UInt8]] { flat.allGatherBytes(send) }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        flat.broadcast(buffer, count: count, root: root)
    }

    public func barrier() { flat.barrier() }

    public func send(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) {
        flat.send(buffer, count: count, to: to, tag: tag)
    }

    public func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) {
        flat.receive(buffer, count: count, from: from, tag: tag)
    }

    public func startSend(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) -> CommRequest {
        flat.startSend(buffer, count: count, to: to, tag: tag)
    }

    public func startReceive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) -> CommRequest {
        flat.startReceive(buffer, count: count, from: from, tag: tag)
    }

    public func split(color: Int, key: Int, name: String) -> any Communicator {
        flat.split(color: color, key: key, name: name)
    }

    public func noteStep(_ step: Int) {
        for group in [flat, intraHost, interHost] { group.noteStep(step) }
    }
}
