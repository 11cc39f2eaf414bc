import ArgumentParser
import Foundation
import KumoComm
import KumoCore

/// `kumo bench comm`: all-reduce and all-gather bus bandwidth through Kumo's communicator.
struct BenchComm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm",
        abstract:
            "Check every collective, then time all-reduce (blocking and non-blocking; also in levels when the ranks "
            + "span hosts) and all-gather for message "
            + "sizes from --min-mib to --max-mib (powers of two); run under mpirun, rank 0 prints one JSON object "
            + "per op and size (nccl-tests bus bandwidth).")

    @Option(help: "Smallest message in MiB.")
    var minMib = 1

    @Option(help: "Largest message in MiB.")
    var maxMib = 64

    @Option(help: "Timed iterations per size (after 2 untimed ones).")
    var iterations = 10

    func validate() throws {
        if minMib < 1 || maxMib < minMib { throw ValidationError("need 1 <= --min-mib <= --max-mib") }
        if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
    }

    func run() throws {
        let (world, topology) = CommWorld.startByHost(timeoutSeconds: 300)
        try CommCheck.run(world)
        let levelled = world.size > 1 ? HierarchicalGroup.make(world, hosts: topology.hostsByMeshRank) : nil
        if let levelled { try CommCheck.run(levelled) }
        if world.rank == 0 {
            let hosts = topology.hostOrder.count
            printErr(
                "collective checks passed on \(world.size) ranks"
                    + (levelled == nil ? "" : ", flat and in levels over \(hosts) hosts"))
        }
        var mib = minMib
        while mib <= maxMib {
            let bytes = mib * 1_048_576
            let buffer = [Float](repeating: 1, count: bytes / 4)
            var out = [Float](repeating: 0, count: bytes / 4)
            let n = Double(world.size)
            // op, bus bandwidth factor, one call
            let ops: [(String, Double, () -> Void)] =
                [
                    ("allreduce", 2 * (n - 1) / n, { world.allReduce(&out, count: bytes / 4, op: .sum) }),
                    (
                        "allreduce_nonblocking", 2 * (n - 1) / n,
                        { world.wait(world.startAllReduce(&out, count: bytes / 4, op: .sum)) }
                    ),
                    (
                        "allgather", (n - 1) / n,
                        { world.allGather(buffer, &out, countPerRank: bytes / 4 / world.size) }
                    ),
                ]
                + (levelled.map { group in
                    [("allreduce_hierarchical", 2 * (n - 1) / n, { group.allReduce(&out, count: bytes / 4, op: .sum) })]
                } ?? [])
            for (name, factor, call) in ops {
                for _ in 0..<2 { call() }
                world.barrier()
                let t0 = SystemInfo.now()
                for _ in 0..<iterations { call() }
                var seconds = [(SystemInfo.now() - t0) / Double(iterations)]
                world.allReduce(&seconds, op: .max)
                if world.rank == 0 {
                    let busbw = Double(bytes) / seconds[0] * factor / 1e9
                    print(
                        "{\"impl\":\"kumo\",\"op\":\"\(name)\",\"bytes\":\(bytes),\"ranks\":\(world.size),"
                            + "\"seconds\":\(seconds[0]),\"busbw_gbps\":\(busbw)}")
                }
            }
            mib *= 2
        }
        CommWorld.finish(world)
    }
}
