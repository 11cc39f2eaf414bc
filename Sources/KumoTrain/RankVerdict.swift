import Foundation
import KumoComm

/// Outcomes shared by every rank of a job, so that all of them act alike: a failure on one rank
/// (a checkpoint file it cannot write, a checkpoint rank 0 refuses) is thrown on every rank, and
/// MPI can then end cleanly everywhere instead of leaving ranks waiting in a collective.
enum RankVerdict {
    private enum Report: Codable {
        case done([UInt8])
        case failed(CheckpointError)
        /// A `ConfigError`'s message: a refusal that says what to do, thrown as one on every rank.
        case refused(String)
    }

    /// Every rank's `outcome` bytes in rank order when all succeeded; otherwise throws the lowest
    /// failing rank's error on every rank. Doubles as a barrier.
    static func gather(_ world: any Communicator, _ outcome: () throws -> [UInt8]) throws -> [[UInt8]] {
        let report: Report
        do {
            report = .done(try outcome())
        } catch let error as CheckpointError {
            report = .failed(error)
        } catch let error as ConfigError {
            report = .refused(error.description)
        } catch {
            report = .failed(CheckpointError(.io, "rank \(world.rank)", "\(error)"))
        }
        let all = try gatherVariable(world, Array(JSONEncoder().encode(report))).map {
            try JSONDecoder().decode(Report.self, from: Data($0))
        }
        return try all.map { r in
            switch r {
            case .done(let bytes): return bytes
            case .failed(let error): throw error
            case .refused(let message): throw ConfigError(message)
            }
        }
    }

    /// Rank 0's `decide()` on every rank (the others do not call it); its error is thrown on all.
    static func fromRankZero<T: Codable>(_ world: any Communicator, _ decide: () throws -> T) throws -> T {
        let all = try gather(world) { world.rank == 0 ? Array(try JSONEncoder().encode(decide())) : [] }
        do {
            return try JSONDecoder().decode(T.self, from: Data(all[0]))
        } catch {
            throw CheckpointError(.io, "rank 0", "sent an unreadable decision: \(error)")
        }
    }

    /// Every rank's `bytes`, of any length (the all-gather itself needs equal lengths: each message
    /// is padded to the longest, whose length is gathered first).
    private static func gatherVariable(_ world: any Communicator, _ bytes: [UInt8]) -> [[UInt8]] {
        let lengths = world.allGatherBytes(withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) }).map {
            Int($0.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        }
        let longest = lengths.max() ?? 0
        let padded = world.allGatherBytes(bytes + [UInt8](repeating: 0, count: longest - bytes.count))
        return zip(padded, lengths).map { Array($0.prefix($1)) }
    }
}
