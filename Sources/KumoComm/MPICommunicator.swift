import CMPI
import Foundation

/// A group of ranks over Open MPI. Every MPI call is made from the thread that created the
/// world (MPI_THREAD_FUNNELED); waits run under the collective timeout.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let name: String
    public let counters: CommCounters
    private let comm: OpaquePointer
    private let watchdog: CollectiveWatchdog

    private init(comm: OpaquePointer, name: String, watchdog: CollectiveWatchdog) {
        self.comm = comm
        self.name = name
        self.watchdog = watchdog
        counters = CommCounters(group: name)
        var r: Int32 = 0
        var n: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &n)
        rank = Int(r)
        size = Int(n)
    }

    /// Initialises MPI and returns the world group; waits longer than `timeoutSeconds` abort the job.
    public static func initWorld(timeoutSeconds: Double) -> MPICommunicator {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, kumo_mpi_thread_funneled(), &provided)
        var r: Int32 = 0
        MPI_Comm_rank(kumo_mpi_comm_world(), &r)
        let watchdog = CollectiveWatchdog(timeoutSeconds: timeoutSeconds, worldRank: Int(r))
        return MPICommunicator(comm: kumo_mpi_comm_world(), name: "world", watchdog: watchdog)
    }

    /// Shuts MPI down; call once on every rank after the last collective.
    public static func finalize() { MPI_Finalize() }

    /// Ends every rank of the job with `code` (for errors found on one rank only).
    public static func abortJob(code: Int32) -> Never {
        MPI_Abort(kumo_mpi_comm_world(), code)
        exit(code)
    }

    private static func mpiOp(_ op: ReduceOp) -> OpaquePointer {
        switch op {
        case .sum: return kumo_mpi_sum()
        case .max: return kumo_mpi_max()
        case .min: return kumo_mpi_min()
        }
    }

    private static func int32(_ count: Int) -> Int32 {
        precondition(count <= Int(Int32.max), "message of \(count) elements exceeds MPI's 32-bit count")
        return Int32(count)
    }

    /// Counts a call and runs it under the timeout, adding its time to the counters.
    private func blocking(_ op: String, bytes: Int, _ body: () -> Void) {
        counters.count(op, bytes: bytes)
        counters.time(op, watchdog.guarded(group: name, op: op, body))
    }

    private func started(_ op: String, bytes: Int, _ launch: (inout OpaquePointer?) -> Void) -> CommRequest {
        counters.count(op, bytes: bytes)
        var handle: OpaquePointer? = kumo_mpi_request_null()
        launch(&handle)
        return CommRequest(op: op, bytes: bytes, handle: handle, isComplete: false)
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) {
        blocking("allreduce", bytes: 4 * count) {
            MPI_Allreduce(
                kumo_mpi_in_place(), buffer, Self.int32(count), kumo_mpi_float(), Self.mpiOp(op), comm)
        }
    }

    public func allReduce(_ values: inout [Double], op: ReduceOp) {
        let n = values.count
        values.withUnsafeMutableBufferPointer { v in
            blocking("allreduce", bytes: 8 * n) {
                MPI_Allreduce(
                    kumo_mpi_in_place(), v.baseAddress, Self.int32(n), kumo_mpi_double(), Self.mpiOp(op), comm)
            }
        }
    }

    public func startAllReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) -> CommRequest {
        started("allreduce", bytes: 4 * count) { handle in
            MPI_Iallreduce(
                kumo_mpi_in_place(), buffer, Self.int32(count), kumo_mpi_float(), Self.mpiOp(op), comm, &handle)
        }
    }

    public func reduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int, op: ReduceOp
    ) {
        blocking("reducescatter", bytes: 4 * count * size) {
            MPI_Reduce_scatter_block(send, receive, Self.int32(count), kumo_mpi_float(), Self.mpiOp(op), comm)
        }
    }

    public func startReduceScatter(
        _ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, counts: [Int], op: ReduceOp
    ) -> CommRequest {
        precondition(counts.count == size, "\(counts.count) counts for a group of \(size)")
        let sizes = UnsafeMutableBufferPointer<Int32>.allocate(capacity: size)
        _ = sizes.initialize(from: counts.map(Self.int32))
        let request = started("reducescatter", bytes: 4 * counts.reduce(0, +)) { handle in
            MPI_Ireduce_scatter(send, receive, sizes.baseAddress, kumo_mpi_float(), Self.mpiOp(op), comm, &handle)
        }
        request.counts = sizes
        return request
    }

    public func allGather(_ send: UnsafePointer<Float>, _ receive: UnsafeMutablePointer<Float>, countPerRank count: Int)
    {
        blocking("allgather", bytes: 4 * count) {
            MPI_Allgather(
                send, Self.int32(count), kumo_mpi_float(), receive, Self.int32(count), kumo_mpi_float(), comm)
        }
    }

    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        precondition(counts.count == size, "\(counts.count) counts for a group of \(size)")
        let sizes = counts.map(Self.int32)
        let offsets = counts.indices.map { Self.int32(counts[..<$0].reduce(0, +)) }
        blocking("allgather", bytes: 4 * counts[rank]) {
            MPI_Allgatherv(
                kumo_mpi_in_place(), 0, kumo_mpi_float(), buffer, sizes, offsets, kumo_mpi_float(), comm)
        }
    }

    public func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int]
    ) {
        precondition(
            sendCounts.count == size && receiveCounts.count == size, "all-to-all counts for a group of \(size)")
        func offsets(_ counts: [Int]) -> [Int32] { counts.indices.map { Self.int32(counts[..<$0].reduce(0, +)) } }
        blocking("alltoall", bytes: 4 * sendCounts.reduce(0, +)) {
            MPI_Alltoallv(
                send, sendCounts.map(Self.int32), offsets(sendCounts), kumo_mpi_float(), receive,
                receiveCounts.map(Self.int32), offsets(receiveCounts), kumo_mpi_float(), comm)
        }
    }

    public func startAllGatherInPlace(_ buffer: UnsafeMutableRawPointer, counts: [Int], elementBytes: Int)
        -> CommRequest
    {
        precondition(counts.count == size, "\(counts.count) counts for a group of \(size)")
        precondition(elementBytes == 4 || elementBytes == 1, "elements of 4 (fp32) or 1 byte, not \(elementBytes)")
        // Sizes, then offsets: MPI reads both until the gather completes.
        let sizesAndOffsets = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 2 * size)
        _ = sizesAndOffsets.initialize(
            from: counts.map(Self.int32) + counts.indices.map { Self.int32(counts[..<$0].reduce(0, +)) })
        let type = elementBytes == 4 ? kumo_mpi_float() : kumo_mpi_byte()
        let request = started("allgather", bytes: elementBytes * counts[rank]) { handle in
            MPI_Iallgatherv(
                kumo_mpi_in_place(), 0, type, buffer, sizesAndOffsets.baseAddress, sizesAndOffsets.baseAddress! + size,
                type, comm, &handle)
        }
        request.counts = sizesAndOffsets
        return request
    }

    public func allGatherBytes(_ send: [UInt8]) -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: send.count * size)
        blocking("allgather", bytes: send.count) {
            MPI_Allgather(
                send, Self.int32(send.count), kumo_mpi_byte(), &all, Self.int32(send.count), kumo_mpi_byte(), comm)
        }
        return (0..<size).map { Array(all[$0 * send.count..<($0 + 1) * send.count]) }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        blocking("broadcast", bytes: 4 * count) {
            MPI_Bcast(buffer, Self.int32(count), kumo_mpi_float(), Int32(root), comm)
        }
    }

    public func barrier() {
        blocking("barrier", bytes: 0) { MPI_Barrier(comm) }
    }

    public func send(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) {
        blocking("send", bytes: 4 * count) {
            MPI_Send(buffer, Self.int32(count), kumo_mpi_float(), Int32(to), Int32(tag), comm)
        }
    }

    public func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) {
        blocking("recv", bytes: 4 * count) {
            MPI_Recv(
                buffer, Self.int32(count), kumo_mpi_float(), Int32(from), Int32(tag), comm, kumo_mpi_status_ignore())
        }
    }

    public func startSend(_ buffer: UnsafePointer<Float>, count: Int, to: Int, tag: Int) -> CommRequest {
        started("send", bytes: 4 * count) { handle in
            MPI_Isend(buffer, Self.int32(count), kumo_mpi_float(), Int32(to), Int32(tag), comm, &handle)
        }
    }

    public func startReceive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from: Int, tag: Int) -> CommRequest {
        started("recv", bytes: 4 * count) { handle in
            MPI_Irecv(buffer, Self.int32(count), kumo_mpi_float(), Int32(from), Int32(tag), comm, &handle)
        }
    }

    public func test(_ request: CommRequest) -> Bool {
        if request.isComplete { return true }
        var flag: Int32 = 0
        MPI_Test(&request.handle, &flag, kumo_mpi_status_ignore())
        request.isComplete = flag != 0
        return request.isComplete
    }

    public func wait(_ request: CommRequest) {
        if request.isComplete { return }
        counters.time(
            request.op,
            watchdog.guarded(group: name, op: request.op) {
                MPI_Wait(&request.handle, kumo_mpi_status_ignore())
            })
        request.isComplete = true
    }

    public func split(color: Int, key: Int, name: String) -> any Communicator {
        var sub: OpaquePointer? = kumo_mpi_comm_null()
        counters.count("split", bytes: 0)
        counters.time(
            "split",
            watchdog.guarded(group: self.name, op: "split") {
                MPI_Comm_split(comm, Int32(color), Int32(key), &sub)
            })
        return MPICommunicator(comm: sub!, name: name, watchdog: watchdog)
    }

    public func noteStep(_ step: Int) { watchdog.noteStep(step) }
}
