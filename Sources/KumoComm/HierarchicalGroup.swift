import Foundation

/// A group whose ranks span several hosts, the same number (more than one) on each, whose gradient
/// and parameter collectives move in levels so each rank sends one piece across hosts, not the whole
/// buffer through the ring:
/// - all-reduce: reduce-scatter inside each host (`intra_host`, shared memory), all-reduce of each
///   rank's piece across hosts (`inter_host`), all-gather inside each host;
/// - reduce-scatter (ZeRO's gradients): reduce-scatter inside each host of the pieces ordered by the
///   level that owns them, then reduce-scatter across hosts;
/// - all-gather (ZeRO's parameters): all-gather across hosts, then inside each host.
/// Each started operation is a chain of non-blocking steps: the first runs from the start (`test`
/// progresses it), the others are started and finished by `wait`.
/// Every other operation is the flat group's. Counters of the two levels appear as
/// `comm.intra_host.*` and `comm.inter_host.*`.
public final class HierarchicalGroup: Communicator {
    public let flat: any Communicator
    public let intraHost: any Communicator
    public let interHost: any Communicator
    /// The group rank at intra-host rank l and inter-host rank j: `members[l][j]`.
    private let members: [[Int]]
    /// The chains started and not yet finished, by the request handed out for them.
    private var chains: [ObjectIdentifier: Chain] = [:]

    /// A levelled operation in flight: the step now running, the steps after it and what frees its
    /// scratch once the last one completes.
    private final class Chain {
        var group: any Communicator
        var request: CommRequest
        var steps: [() -> (any Communicator, CommRequest)]
        let finish: () -> Void

        init(
            _ first: (any Communicator, CommRequest), then steps: [() -> (any Communicator, CommRequest)],
            finish: @escaping () -> Void
        ) {
            (group, request) = first
            self.steps = steps
            self.finish = finish
        }
    }

    private init(flat: any Communicator, intraHost: any Communicator, interHost: any Communicator, members: [[Int]]) {
        self.flat = flat
        self.intraHost = intraHost
        self.interHost = interHost
        self.members = members
    }

    /// `group` made hierarchical when its ranks (on `hosts`, by group rank) span several hosts with the
    /// same number above one on each; nil otherwise (a flat all-reduce is then as good). Every rank of
    /// `group` must call it with the same `hosts`.
    public static func make(_ group: any Communicator, hosts: [String]) -> HierarchicalGroup? {
        precondition(hosts.count == group.size, "\(hosts.count) hosts for a group of \(group.size)")
        let topology = HostTopology(hosts: hosts)
        let byHost = topology.ranksByHost.map { $0.ranks.sorted() }
        guard byHost.count > 1, byHost[0].count > 1, Set(byHost.map(\.count)).count == 1,
            let index = topology.hostOrder.firstIndex(of: hosts[group.rank])
        else { return nil }
        let intra = group.split(color: index, key: group.rank, name: "intra_host")
        let inter = group.split(color: intra.rank, key: group.rank, name: "inter_host")
        // The split orders each level by group rank: intra rank l is a rank's place on its host, and
        // the ranks at place l, ascending, are the inter-host group of place l.
        let members = (0..<byHost[0].count).map { l in byHost.map { $0[l] }.sorted() }
        return HierarchicalGroup(flat: group, intraHost: intra, interHost: inter, members: members)
    }

    /// The two levels, whose counters belong in the metrics.
    public var levels: [any Communicator] { [intraHost, interHost] }

    public var rank: Int { flat.rank }
    public var size: Int { flat.size }
    public var name: String { flat.name }
    public var counters: CommCounters { flat.counters }

    /// Starts `first`, hands out a request for the whole chain and records it.
    private func start(
        _ op: String, bytes: Int, _ first: (any Communicator, CommRequest),
        then steps: [() -> (any Communicator, CommRequest)], finish: @escaping () -> Void
    ) -> CommRequest {
        let request = CommRequest(op: op, bytes: bytes, isComplete: false)
        chains[ObjectIdentifier(request)] = Chain(first, then: steps, finish: finish)
        return request
    }

    /// Progresses `request`'s chain: without `blocking` only its running step (a later step must not
    /// start here: `test` is called as each rank's timing allows, and every rank must start the
    /// collectives of a level in the same order, the order of their waits); with `blocking` to its
    /// end. Whether the whole chain is done.
    private func advance(_ request: CommRequest, blocking: Bool) -> Bool {
        guard let chain = chains[ObjectIdentifier(request)] else { return request.isComplete }
        while true {
            if blocking {
                chain.group.wait(chain.request)
            } else if !chain.group.test(chain.request) || !chain.steps.isEmpty {
                return false
            }
            guard !chain.steps.isEmpty else { break }
            (chain.group, chain.request) = chain.steps.removeFirst()()
        }
        chain.finish()
        chains.removeValue(forKey: ObjectIdentifier(request))
        request.isComplete = true
        return true
    }

    public func test(_ request: CommRequest) -> Bool {
        chains[ObjectIdentifier(request)] == nil ? flat.test(request) : advance(request, blocking: false)
    }

    public func wait(_ request: CommRequest) {
        if chains[ObjectIdentifier(request)] == nil { return flat.wait(request) }
        _ = advance(request, blocking: true)
    }

    /// Where each group rank's piece of a buffer split by `counts` lies, and the same pieces ordered
    /// by level (intra-host rank, then inter-host rank) as the levelled steps exchange them.
    private struct Levels {
        /// Offset of each group rank's piece, in rank order.
        let offsets: [Int]
        /// Group ranks in level order.
        let order: [Int]
        /// Elements per intra-host rank: the pieces of the ranks at that place on every host.
        let places: [Int]
        /// Elements per inter-host rank among this rank's place.
        let across: [Int]
        let counts: [Int]

        init(counts: [Int], members: [[Int]], place: Int) {
            self.counts = counts
            offsets = counts.indices.map { counts[..<$0].reduce(0, +) }
            order = members.flatMap { $0 }
            places = members.map { $0.reduce(0) { $0 + counts[$1] } }
            across = members[place].map { counts[$0] }
        }

        /// Copies the pieces from rank order (`ranked`) to level order (`levelled`), or back.
        func permute(_ ranked: UnsafeMutableRawPointer, _ levelled: UnsafeMutableRawPointer, bytes: Int, back: Bool) {
            var at = 0
            for r in order {
                let (rankedPiece, levelledPiece) = (ranked + offsets[r] * bytes, levelled + at * bytes)
                if back {
                    rankedPiece.copyMemory(from: levelledPiece, byteCount: counts[r] * bytes)
                } else {
                    levelledPiece.copyMemory(from: rankedPiece, byteCount: counts[r] * bytes)
                }
                at += counts[r]
            }
        }
    }

    private func levels(_ counts: [Int]) -> Levels {
        precondition(counts.count == size, "\(counts.count) counts for a group of \(size)")
        return Levels(counts: counts, members: members, place: intraHost.rank)
    }

    /// `count` split into one piece per rank of the host, the first ones a float longer.
    private func pieces(_ count: Int) -> [Int] {
        (0..<intraHost.size).map { count / intraHost.size + ($0 < count % intraHost.size ? 1 : 0) }
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) {
        wait(startAllReduce(buffer, count: count, op: op))
    }

    public func allReduce(_ values: inout [Double], op: ReduceOp) { flat.allReduce(&values, op: op) }

    public func startAllReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) -> CommRequest {
        let (intra, inter) = (intraHost, interHost)
        let counts = pieces(count)
        let mine = counts[intra.rank]
        let into = buffer + counts[..<intra.rank].reduce(0, +)
        let piece = UnsafeMutablePointer<Float>.allocate(capacity: max(mine, 1))
        return start(
            "allreduce", bytes: 4 * count, (intra, intra.startReduceScatter(buffer, piece, counts: counts, op: op)),
            then: [
                { (inter, inter.startAllReduce(piece, count: mine, op: op)) },
                {
                    into.update(from: piece, count: mine)
                    return (intra, intra.startAllGatherInPlace(buffer, counts: counts, elementBytes: 4))
                },
            ], finish: { piece.deallocate() })
    }

    public func reduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int, op: ReduceOp
    ) { wait(startReduceScatter(send, receive, counts: Array(repeating: count, count: size), op: op)) }

    public func startReduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, counts: [Int], op: ReduceOp
    ) -> CommRequest {
        let (intra, inter) = (intraHost, interHost)
        let levels = levels(counts)
        let staging = UnsafeMutablePointer<Float>.allocate(capacity: max(counts.reduce(0, +), 1))
        levels.permute(UnsafeMutableRawPointer(mutating: send), staging, bytes: 4, back: false)
        let piece = UnsafeMutablePointer<Float>.allocate(capacity: max(levels.places[intra.rank], 1))
        return start(
            "reducescatter", bytes: 4 * counts[rank],
            (intra, intra.startReduceScatter(staging, piece, counts: levels.places, op: op)),
            then: [{ (inter, inter.startReduceScatter(piece, receive, counts: levels.across, op: op)) }],
            finish: {
                staging.deallocate()
                piece.deallocate()
            })
    }

    public func allGather(_ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int)
    {
        (receive + rank * count).update(from: send, count: count)
        allGatherInPlace(receive, counts: Array(repeating: count, count: size))
    }

    /// All-to-all has no levels to gain from: every rank's data goes to every other rank once.
    public func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int]
    ) { flat.allToAll(send, sendCounts: sendCounts, receive, receiveCounts: receiveCounts) }

    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        wait(startAllGatherInPlace(buffer, counts: counts, elementBytes: 4))
    }

    public func startAllGatherInPlace(_ buffer: UnsafeMutableRawPointer, counts: [Int], elementBytes bytes: Int)
        -> CommRequest
    {
        let (intra, inter) = (intraHost, interHost)
        let levels = levels(counts)
        let place = levels.across.reduce(0, +)
        let piece = UnsafeMutableRawPointer.allocate(byteCount: max(place * bytes, 1), alignment: 16)
        (piece + levels.across[..<inter.rank].reduce(0, +) * bytes).copyMemory(
            from: buffer + levels.offsets[rank] * bytes, byteCount: counts[rank] * bytes)
        let staging = UnsafeMutableRawPointer.allocate(byteCount: max(counts.reduce(0, +) * bytes, 1), alignment: 16)
        return start(
            "allgather", bytes: bytes * counts[rank],
            (inter, inter.startAllGatherInPlace(piece, counts: levels.across, elementBytes: bytes)),
            then: [
                {
                    (staging + levels.places[..<intra.rank].reduce(0, +) * bytes).copyMemory(
                        from: piece, byteCount: place * bytes)
                    return (intra, intra.startAllGatherInPlace(staging, counts: levels.places, elementBytes: bytes))
                }
            ],
            finish: {
                levels.permute(buffer, staging, bytes: bytes, back: true)
                staging.deallocate()
                piece.deallocate()
            })
    }

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
