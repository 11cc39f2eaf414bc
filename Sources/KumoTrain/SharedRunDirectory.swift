import Foundation
import KumoComm

/// Checkpoints are written by every rank into the run directory rank 0 claimed, and read back by
/// every rank on resume: the directory must be on a file system all hosts share. Node-local run
/// directories are refused at start-up, naming the hosts that cannot see it.
public enum SharedRunDirectory {
    /// Every rank looks for rank 0's lock file in `path`; all ranks get the same verdict.
    public static func check(_ path: String, world: any Communicator, hostOf host: (Int) -> String) throws {
        let visible = FileManager.default.fileExists(atPath: path + "/" + RunLock.fileName)
        let all = world.allGatherBytes([visible ? 1 : 0]).map { $0.first == 1 }
        if let refusal = refusal(path, visible: all, hostOf: host) { throw ConfigError(refusal) }
    }

    /// The refusal when some ranks cannot see the run directory, naming their hosts; nil when all can.
    public static func refusal(_ path: String, visible: [Bool], hostOf host: (Int) -> String) -> String? {
        let blind = visible.indices.filter { !visible[$0] }
        guard !blind.isEmpty else { return nil }
        var hosts: [String] = []
        for r in blind where !hosts.contains(host(r)) { hosts.append(host(r)) }
        return "the run directory \(path) (made by rank 0 on \(host(0))) is not visible on "
            + hosts.joined(separator: ", ") + " (ranks " + blind.map(String.init).joined(separator: ",")
            + "): every rank writes its checkpoint shards there and reads them back on resume, so it must be "
            + "on a file system all hosts share (NFS, Lustre, GPFS); pass --run-dir on such a file system"
    }
}
