import Foundation
import KumoCore

/// A checkpoint that cannot be written, found or trusted; `file` names the file at fault.
public struct CheckpointError: UserFacingError, Equatable, Codable {
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

/// The parallel layout a checkpoint was written with. Shards hold ranges of the whole model's flat
/// buffers whatever the layout, so a reader with any other layout reads the ranges it needs.
public struct ParallelLayout: Codable, Equatable, Sendable, CustomStringConvertible {
    public var worldSize: Int
    public var dataParallel: Int
    public var tensorParallel: Int
    public var pipelineParallel: Int
    public var zeroStage: Int
    /// `parallel.shard_group_size`: ZeRO shards over groups of this many data-parallel ranks (0: all of them).
    public var shardGroupSize: Int
    /// `parallel.expert`: a mixture's experts split over groups of this many data-parallel ranks
    /// (absent from checkpoints written before expert parallelism: 1).
    public var expertParallel: Int = 1

    /// One process: no data, tensor, pipeline or expert parallelism, no ZeRO.
    public static let single = ParallelLayout(
        worldSize: 1, dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, zeroStage: 0, shardGroupSize: 0)

    /// "4 ranks (data 1 × tensor 2 × pipeline 2, ZeRO 0, shard groups of 0)", with ", experts over 2"
    /// under expert parallelism.
    public var description: String {
        "\(worldSize) ranks (data \(dataParallel) × tensor \(tensorParallel) × pipeline \(pipelineParallel), "
            + "ZeRO \(zeroStage), shard groups of \(shardGroupSize)"
            + (expertParallel > 1 ? ", experts over \(expertParallel))" : ")")
    }

    /// A layout of the given sizes.
    public init(
        worldSize: Int, dataParallel: Int, tensorParallel: Int, pipelineParallel: Int, zeroStage: Int,
        shardGroupSize: Int, expertParallel: Int = 1
    ) {
        self.worldSize = worldSize
        self.dataParallel = dataParallel
        self.tensorParallel = tensorParallel
        self.pipelineParallel = pipelineParallel
        self.zeroStage = zeroStage
        self.shardGroupSize = shardGroupSize
        self.expertParallel = expertParallel
    }

    /// Reads a manifest's layout; one without `expert_parallel` had none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            worldSize: try c.decode(Int.self, forKey: .worldSize),
            dataParallel: try c.decode(Int.self, forKey: .dataParallel),
            tensorParallel: try c.decode(Int.self, forKey: .tensorParallel),
            pipelineParallel: try c.decode(Int.self, forKey: .pipelineParallel),
            zeroStage: try c.decode(Int.self, forKey: .zeroStage),
            shardGroupSize: try c.decode(Int.self, forKey: .shardGroupSize),
            expertParallel: try c.decodeIfPresent(Int.self, forKey: .expertParallel) ?? 1)
    }

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size"
        case dataParallel = "data_parallel"
        case tensorParallel = "tensor_parallel"
        case pipelineParallel = "pipeline_parallel"
        case zeroStage = "zero_stage"
        case shardGroupSize = "shard_group_size"
        case expertParallel = "expert_parallel"
    }
}

/// A tensor of the global model: its Hugging Face name, shape, and offset in the flat buffer (floats).
public struct ManifestTensor: Codable, Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
}

/// Global ranges a shard file holds, stored one after another: `runs` runs of `count` floats of the
/// flat buffer `name`, the first from element `flatStart` and each next `stride` elements after the
/// one before. One run (no `runs` or `stride` in the JSON) is a plain range; several are the rows
/// of a tensor sliced by columns (tensor parallelism).
public struct ManifestSection: Codable, Equatable, Sendable {
    public var name: String
    public var flatStart: Int
    /// Floats in each run.
    public var count: Int
    public var runs: Int
    /// Distance between the starts of consecutive runs, in elements (0 for one run).
    public var stride: Int

    public init(name: String, flatStart: Int, count: Int, runs: Int = 1, stride: Int = 0) {
        self.name = name
        self.flatStart = flatStart
        self.count = count
        self.runs = runs
        self.stride = stride
    }

    /// Floats in all runs (nil on overflow).
    public var total: Int? {
        let (n, overflow) = count.multipliedReportingOverflow(by: runs)
        return overflow ? nil : n
    }

    /// This section with `count` more floats from global element `start` stored after it: one
    /// longer range, or one more run `stride` after the last; nil when they do not fit either way.
    func appending(_ start: Int, _ count: Int) -> ManifestSection? {
        var s = self
        if runs == 1 && start == flatStart + self.count {
            s.count += count
        } else if count == self.count && runs == 1 && start > flatStart + count {
            s.stride = start - flatStart
            s.runs = 2
        } else if count == self.count && runs > 1 && start == flatStart + runs * stride {
            s.runs += 1
        } else {
            return nil
        }
        return s
    }

    /// The global range of run `i`.
    func run(_ i: Int) -> Range<Int> {
        let start = flatStart + i * stride
        return start..<start + count
    }

    enum CodingKeys: String, CodingKey {
        case name, count, runs, stride
        case flatStart = "flat_start"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        flatStart = try c.decode(Int.self, forKey: .flatStart)
        count = try c.decode(Int.self, forKey: .count)
        runs = try c.decodeIfPresent(Int.self, forKey: .runs) ?? 1
        stride = try c.decodeIfPresent(Int.self, forKey: .stride) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(flatStart, forKey: .flatStart)
        try c.encode(count, forKey: .count)
        if runs != 1 || stride != 0 {
            try c.encode(runs, forKey: .runs)
            try c.encode(stride, forKey: .stride)
        }
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

/// Floats in a shard file: the global runs of `section`, stored one after another from byte
/// `offset` of the file (little-endian fp32).
public struct ShardSection: Codable, Equatable, Sendable {
    public var section: ManifestSection
    public var offset: Int

    enum CodingKeys: String, CodingKey { case offset }

    /// The section's keys and `offset` share one JSON object.
    public init(from decoder: any Decoder) throws {
        section = try ManifestSection(from: decoder)
        offset = try decoder.container(keyedBy: CodingKeys.self).decode(Int.self, forKey: .offset)
    }

    public init(section: ManifestSection, offset: Int) {
        self.section = section
        self.offset = offset
    }

    public func encode(to encoder: any Encoder) throws {
        try section.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(offset, forKey: .offset)
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
