import Foundation
import KumoComm
import KumoCore
import KumoPlan
import KumoTrain

/// `kumo plan --calibrate`: measures compute in this process, then starts `mpirun` on 2 ranks of
/// this binary for the links (`--calibrate-links`), and on 1, 2 and 4 ranks for a small training
/// run whose peak RSS, beside the buffers the memory model counts, is a rank's runtime overhead. Under mpirun across
/// hosts, `kumo plan --calibrate-links` measures the links between them into the saved profile.
enum PlanCalibration {
    /// The small run whose residual memory is the runtime overhead.
    static let overheadRun = [
        "model.preset=tiny", "train.seq_length=128", "train.micro_batch_size=1", "train.global_batch_size=4",
        "train.threads=1",
    ]

    static func run() throws {
        if CommWorld.isLaunchedByMPI {
            throw ValidationFailure(
                "run kumo plan --calibrate without mpirun (it starts its own 2-rank jobs); to measure links between "
                    + "hosts, run mpirun ... kumo plan --calibrate-links after it")
        }
        printErr("calibrating: GEMM, attention and memory bandwidth at each thread count (about a minute)")
        var profile = Calibration.measureCompute { printErr("  " + $0) }
        let links = try mpirun(["plan", "--calibrate-links"])
        if let link = try JSONDecoder().decode([String: HardwareProfile.Link].self, from: Data(links.utf8))[
            "intra_host"]
        {
            profile.intraHost = link
            profile.interHost = link
            printErr(
                String(
                    format: "  MPI between 2 ranks: %.2f GB/s, %.1f µs (also used for inter_host until measured)",
                    link.bandwidthBytesPerSecond / 1e9, link.latencySeconds * 1e6))
        }
        profile.runtime = try [1, 2, 4].map { ranks in
            let point = HardwareProfile.RuntimePoint(ranks: ranks, bytes: try runtimeOverhead(ranks: ranks))
            printErr(
                String(
                    format: "  runtime overhead per rank, %d on the host: %.1f MiB", ranks,
                    Double(point.bytes) / 1_048_576))
            return point
        }
        printErr("saved \(try ProfileStore.saveLocal(profile).path)")
    }

    /// Peak RSS of the largest rank of a small run on `ranks` ranks, less what the memory model counts.
    static func runtimeOverhead(ranks: Int) throws -> Int {
        let out = try mpirun(
            ranks: ranks,
            ["bench", "train", "--json", "--steps", "2", "--warmup", "1"] + overheadRun.flatMap { ["--set", $0] })
        guard let line = out.split(separator: "\n").last,
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let peak = object["peak_rss_bytes_max_rank"] as? Int
        else { throw ValidationFailure("the calibration run printed no peak_rss_bytes_max_rank: \(out)") }
        let config = try RunConfig.load(path: nil, overrides: overheadRun + ["data.synthetic=true"])
        return max(0, peak - config.memory(ranks: ranks).peakBytesPerRank)
    }

    /// Under mpirun: rank 0 prints the links it measured as JSON, and saves them into the local
    /// profile when the ranks span hosts.
    static func links() throws {
        let (world, topology) = CommWorld.startByHost(timeoutSeconds: 120)
        guard world.size >= 2 else { throw ValidationFailure("--calibrate-links needs at least 2 ranks under mpirun") }
        let (intra, inter) = measureLinks(world, hosts: topology.hostsByMeshRank)
        CommWorld.finish(world)
        guard world.rank == 0 else { return }
        var found: [String: HardwareProfile.Link] = [:]
        found["intra_host"] = intra
        found["inter_host"] = inter
        print(String(decoding: try JSONEncoder().encode(found), as: UTF8.self))
        if let inter, var profile = try? ProfileStore.load("local") {
            profile.interHost = inter
            if let intra { profile.intraHost = intra }
            printErr("saved the links into \(try ProfileStore.saveLocal(profile).path)")
        }
    }

    /// Runs this binary on `ranks` local ranks under mpirun with `args`; its standard output.
    static func mpirun(ranks: Int = 2, _ args: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        process.arguments = ["--oversubscribe", "-np", "\(ranks)", binary] + args
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        do {
            try process.run()
        } catch {
            throw ValidationFailure("kumo plan --calibrate needs Open MPI's mpirun at /usr/bin/mpirun: \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationFailure(
                "mpirun \(args.joined(separator: " ")) failed with status \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Latency (half the round trip of 8 bytes) and bandwidth (16 MiB each way in turn) between
    /// rank 0 and the first rank on its host (`intra`) and on another host (`inter`). Every rank of
    /// `world` must call it; rank 0's answer counts.
    static func measureLinks(_ world: any Communicator, hosts: [String]) -> (
        intra: HardwareProfile.Link?, inter: HardwareProfile.Link?
    ) {
        let intraPartner = hosts.indices.first { $0 != 0 && hosts[$0] == hosts[0] }
        let interPartner = hosts.indices.first { hosts[$0] != hosts[0] }
        let links = [intraPartner, interPartner].map { partner -> HardwareProfile.Link? in
            guard let partner else { return nil }
            let small = pingPong(world, partner: partner, count: 2, rounds: 200)
            let large = pingPong(world, partner: partner, count: 4 << 20, rounds: 5)
            world.barrier()
            return HardwareProfile.Link(
                bandwidthBytesPerSecond: Double(16 << 20) / max(large - small, 1e-9), latencySeconds: small)
        }
        return (links[0], links[1])
    }

    /// Seconds of one message of `count` floats each way between rank 0 and `partner` (half the mean
    /// round trip); the other ranks wait.
    private static func pingPong(_ world: any Communicator, partner: Int, count: Int, rounds: Int) -> Double {
        let buffer = FloatBuffer(count: count)
        world.barrier()
        guard world.rank == 0 || world.rank == partner else { return 0 }
        let t0 = SystemInfo.now()
        for round in 0..<rounds {
            if world.rank == 0 {
                world.send(buffer.pointer, count: count, to: partner, tag: round)
                world.receive(buffer.pointer, count: count, from: partner, tag: round)
            } else {
                world.receive(buffer.pointer, count: count, from: 0, tag: round)
                world.send(buffer.pointer, count: count, to: 0, tag: round)
            }
        }
        return (SystemInfo.now() - t0) / Double(2 * rounds)
    }
}
