import Foundation
import KumoComm

/// The start-up check of a multi-rank job: every rank must run the same resolved configuration
/// and the same executable, else the job is refused before training.
public enum RankAgreement {
    /// FNV-1a 64 of `bytes`.
    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 { fnv1a(bytes, continuing: 0xcbf2_9ce4_8422_2325) }

    /// FNV-1a over `bytes` from the hash `h` of the bytes before them.
    static func fnv1a(_ bytes: UnsafeRawBufferPointer, continuing h: UInt64) -> UInt64 {
        var h = h
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Hash of the resolved configuration (its TOML text).
    public static func configHash(_ config: RunConfig) -> UInt64 {
        Array(config.toml().utf8).withUnsafeBytes(fnv1a)
    }

    /// Hash of the running executable's bytes (`/proc/self/exe`), read a MiB at a time (the binary
    /// is over 100 MB: read whole, every rank's peak memory held it once).
    public static func binaryHash() throws -> UInt64 {
        guard let file = FileHandle(forReadingAtPath: "/proc/self/exe") else {
            throw ConfigError("cannot read /proc/self/exe to check that every rank runs the same kumo binary")
        }
        defer { try? file.close() }
        var h = fnv1a(UnsafeRawBufferPointer(start: nil, count: 0))
        while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
            h = chunk.withUnsafeBytes { fnv1a($0, continuing: h) }
        }
        return h
    }

    /// Compares hashes across `world`; throws naming the first rank whose config or binary differs from rank 0's.
    public static func check(world: any Communicator, config: RunConfig) throws {
        guard world.size > 1 else { return }
        let mine = [configHash(config), try binaryHash()]
        let all = world.allGatherBytes(mine.withUnsafeBytes { Array($0) }).map { bytes in
            bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        }
        for (rank, h) in all.enumerated() {
            if h[0] != all[0][0] {
                throw ConfigError(
                    "rank \(rank) runs a different resolved configuration than rank 0 "
                        + String(format: "(hash %016llx vs %016llx)", h[0], all[0][0])
                        + "; every rank must get the same --config file and --set overrides")
            }
            if h[1] != all[0][1] {
                throw ConfigError(
                    "rank \(rank) runs a different kumo binary than rank 0 "
                        + String(format: "(hash %016llx vs %016llx)", h[1], all[0][1])
                        + "; install the same build on every host")
            }
        }
    }

    /// Rank 0's `decide()` on every rank (the others do not call it); its error is thrown on all, so
    /// that every rank can end MPI cleanly.
    public static func fromRankZero<T: Codable>(_ world: any Communicator, _ decide: () throws -> T) throws -> T {
        try RankVerdict.fromRankZero(world, decide)
    }
}
