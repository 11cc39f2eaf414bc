import Foundation

/// Where the ranks of a job run, and the rank order that keeps each host's ranks together.
///
/// A launcher may place ranks round-robin over hosts (`mpirun --map-by node`): world ranks 0, 2, 4
/// on one host and 1, 3, 5 on another. The device mesh puts tensor-parallel groups on consecutive
/// ranks (then data, then pipeline, as Megatron-LM does), so Kumo renumbers the ranks host by host
/// — hosts in the order of their lowest world rank, world order inside a host — and builds every
/// group on that numbering: a tensor group then stays inside a host whatever order the launcher chose.
public struct HostTopology: Sendable, Equatable {
    /// The host of each world rank.
    public let hosts: [String]

    public init(hosts: [String]) { self.hosts = hosts }

    /// Test hook `KUMO_DEBUG_HOSTS=a,b,a,b`: the host names of world ranks 0, 1, 2, ... instead of
    /// each process's own (lets one machine stand for several hosts in tests of the renumbering).
    public static let debugHostsVariable = "KUMO_DEBUG_HOSTS"

    /// The hosts of `world`'s ranks (each rank's `ownHostName`, all-gathered).
    public static func discover(
        _ world: any Communicator, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> HostTopology {
        HostTopology(hosts: gatherNames(world, ownHostName(environment: environment)))
    }

    /// This process's host name, or with `KUMO_DEBUG_HOSTS` the name it gives this launch rank.
    public static func ownHostName(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        guard let names = environment[debugHostsVariable]?.split(separator: ",").map(String.init), !names.isEmpty
        else { return ProcessInfo.processInfo.hostName }
        let rank = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"].lazy.compactMap { environment[$0] }.first
        return names[min(rank.flatMap { Int($0) } ?? 0, names.count - 1)]
    }

    /// Every rank's `name` (up to 255 bytes) in rank order.
    static func gatherNames(_ group: any Communicator, _ name: String) -> [String] {
        let width = 256
        let mine = Array(name.utf8.prefix(width - 1))
        return group.allGatherBytes(mine + [UInt8](repeating: 0, count: width - mine.count)).map {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The hosts, in the order of their lowest world rank.
    public var hostOrder: [String] {
        var seen: Set<String> = []
        return hosts.filter { seen.insert($0).inserted }
    }

    /// Whether the ranks run on more than one host.
    public var spansHosts: Bool { Set(hosts).count > 1 }

    /// The world ranks of each host, in `hostOrder`.
    public var ranksByHost: [(host: String, ranks: [Int])] {
        hostOrder.map { host in (host, hosts.indices.filter { hosts[$0] == host }) }
    }

    /// The mesh rank of each world rank: host by host, world order inside a host.
    public var meshRanks: [Int] {
        var out = [Int](repeating: 0, count: hosts.count)
        for (mesh, world) in ranksByHost.flatMap(\.ranks).enumerated() { out[world] = mesh }
        return out
    }

    /// The host of each mesh rank.
    public var hostsByMeshRank: [String] { ranksByHost.flatMap { h in h.ranks.map { _ in h.host } } }

    /// The groups of `size` consecutive mesh ranks (tensor groups) that straddle hosts, as mesh-rank lists.
    public func groupsAcrossHosts(size: Int) -> [[Int]] {
        guard size > 1 else { return [] }
        let byMesh = hostsByMeshRank
        return stride(from: 0, to: byMesh.count, by: size).map { Array($0..<min($0 + size, byMesh.count)) }
            .filter { group in Set(group.map { byMesh[$0] }).count > 1 }
    }

    /// `world` renumbered host by host (the same communicator when the launcher already placed ranks so).
    public func arrange(_ world: any Communicator) -> any Communicator {
        let order = meshRanks
        guard order != Array(order.indices) else { return world }
        return world.split(color: 0, key: order[world.rank], name: "world")
    }

    /// One line per host: its name, its world ranks, and the mesh ranks they became with their
    /// (tensor, data, pipeline) coordinates in `mesh`.
    public func lines(mesh: DeviceMesh) -> [String] {
        let order = meshRanks
        return ranksByHost.map { host, ranks in
            "host \(host): world ranks \(ranks.map(String.init).joined(separator: ",")) → mesh ranks "
                + ranks.map { world in
                    let c = mesh.coordinate(of: order[world])
                    return "\(order[world]) (tp \(c.tensor), dp \(c.data), pp \(c.pipeline))"
                }.joined(separator: ", ")
        }
    }
}
