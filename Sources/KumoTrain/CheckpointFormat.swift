import Foundation

/// A checkpoint that cannot be written, found or trusted; `file` names the file at fault.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Codable {
    /// What went wrong.
    public enum Kind: String, Sendable, Codable {
        /// A file the checkpoint needs does not exist.
        case missingFile
        /// The checkpoint has no COMPLETE marker: its write was interrupted.
        case incomplete
        /// A file's size differs from the manifest's.
        case wrongSize
        /// A file's CRC-32 differs from the manifest's.
        case checksum
        /// A field is out of range, inconsistent or not parseable.
        case malformed
        /// The checkpoint is valid but belongs to another model shape.
        case mismatch
        /// The operating system refused a read or write.
        case io
    }
    public var kind: Kind
    /// The file (or directory) at fault.
    public var file: String
    public var message: String
    public var description: String { "\(file): \(message)" }

    /// Creates an error about `file`.
    public init(_ kind: Kind, _ file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }
}

/// The parallel layout a checkpoint was written with. A reader reshards any data-parallel
/// layout into its own; tensor and pipeline sizes above 1 are recorded but not loaded yet.
public struct ParallelLayout: Codable, Equatable, Sendable {
    public var worldSize: Int
    public var dataParallel: Int
    public var tensorParallel: Int
    public var pipelineParallel: Int
    public var zeroStage: Int
    /// `parallel.shard_group_size`: ZeRO shards over groups of this many data-parallel ranks (0: all of them).
    public var shardGroupSize: Int

    /// One process: no data, tensor or pipeline parallelism, no ZeRO.
    public static let single = ParallelLayout(
        worldSize: 1, dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, zeroStage: 0, shardGroupSize: 0)

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size"
        case dataParallel = "data_parallel"
        case tensorParallel = "tensor_parallel"
        case pipelineParallel = "pipeline_parallel"
        case zeroStage = "zero_stage"
        case shardGroupSize = "shard_group_size"
    }
}

/// A tensor of the global model: its Hugging Face name, shape, and offset in the flat buffer (floats).
public struct ManifestTensor: Codable, Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
}

/// A global range a shard file holds: `count` floats of the flat buffer `name` from element `flatStart`.
public struct ManifestSection: Codable, Equatable, Sendable {
    public var name: String
    public var flatStart: Int
    public var count: Int

    enum CodingKeys: String, CodingKey {
        case name, count
        case flatStart = "flat_start"
    }
}

/// One shard file of a checkpoint: the rank that wrote it, its size in bytes, zlib CRC-32 and the
/// global ranges it holds.
public struct ManifestFile: Codable, Equatable, Sendable {
    public var name: String
    public var rank: Int
    public var bytes: Int
    public var crc32: UInt32
    public var sections: [ManifestSection]
}

/// `manifest.json`: what a checkpoint holds and how to check it.
public struct CheckpointManifest: Codable, Equatable, Sendable {
    public static let formatName = "kumo-checkpoint"
    public static let currentVersion = 2
    public var format: String
    public var version: Int
    /// Optimizer iterations done when the checkpoint was written.
    public var step: Int
    public var layout: ParallelLayout
    /// Floats in the global flat parameter buffer.
    public var flatCount: Int
    public var tensors: [ManifestTensor]
    public var files: [ManifestFile]
    /// The resolved configuration of the run, as TOML.
    public var config: String

    enum CodingKeys: String, CodingKey {
        case format, version, step, layout, tensors, files, config
        case flatCount = "flat_count"
    }
}

/// What a run needs besides tensors to continue exactly where it stopped.
public struct TrainState: Codable, Equatable, Sendable {
    /// Optimizer iterations done (skipped updates count); the LR schedule's position.
    public var step: Int
    /// AdamW updates applied (its bias-correction counter).
    public var optimizerStep: Int
    /// Samples consumed from the data stream: the data sampler's position. Sample `i` depends only
    /// on the data, the seed and `i`, so this and `seed` fix every later batch.
    public var dataPosition: Int
    /// The run's seed (weights initialisation and data order; training draws no other random numbers).
    public var seed: UInt64
    /// Factor applied to the scheduled learning rate (the product of the spike guard's `lr_factor`s).
    public var lrScale: Double
    /// The spike guard's window of accepted losses and gradient norms, oldest first.
    public var lossHistory: [Double]
    public var gradNormHistory: [Double]

    enum CodingKeys: String, CodingKey {
        case step, seed
        case optimizerStep = "optimizer_step"
        case dataPosition = "data_position"
        case lrScale = "lr_scale"
        case lossHistory = "loss_history"
        case gradNormHistory = "grad_norm_history"
    }
}

/// A run of floats in a shard file: `count` floats of the global flat buffer `name` starting at
/// `flatStart`, stored at byte `offset` of the file (little-endian fp32).
public struct ShardSection: Codable, Equatable, Sendable {
    public var name: String
    public var flatStart: Int
    public var count: Int
    public var offset: Int

    enum CodingKeys: String, CodingKey {
        case name, count, offset
        case flatStart = "flat_start"
    }
}

/// The JSON header of a shard file: the rank's training state and where its sections lie.
public struct ShardHeader: Codable, Equatable, Sendable {
    public var rank: Int
    public var state: TrainState
    public var sections: [ShardSection]
}

/// Binary layout of a shard file: magic, version, header length, JSON header, then 64-byte aligned sections.
enum ShardFormat {
    static let magic = Array("KUMOSHRD".utf8)
    static let version: UInt32 = 1
    /// Magic (8 bytes), version (UInt32 LE), header length (UInt32 LE).
    static let preambleBytes = 16
    /// Largest JSON header a reader accepts.
    static let maxHeaderBytes = 16 << 20
    /// Largest manifest a reader accepts.
    static let maxManifestBytes = 64 << 20
    /// The flat buffers a checkpoint holds; the files' sections of each must tile it exactly.
    static let sectionNames = ["params", "adam.m", "adam.v"]

    /// The file name of rank `rank`'s shard.
    static func fileName(rank: Int) -> String { String(format: "rank-%05d.bin", rank) }

    /// `value` rounded up to a multiple of 64.
    static func aligned(_ value: Int) -> Int { (value + 63) & ~63 }
}
