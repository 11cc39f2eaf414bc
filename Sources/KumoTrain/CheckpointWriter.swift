import Foundation

/// Floats of a flat buffer that a shard stores: `count` floats of `name` from `flatStart`.
public struct ShardContent {
    public var name: String
    public var flatStart: Int
    public var pointer: UnsafePointer<Float>
    public var count: Int

    /// Describes `count` floats at `pointer`, element `flatStart` of the global buffer `name`.
    public init(name: String, flatStart: Int, pointer: UnsafePointer<Float>, count: Int) {
        self.name = name
        self.flatStart = flatStart
        self.pointer = pointer
        self.count = count
    }
}

/// A checkpoint being written into a temporary directory of `checkpoints/`. Every rank that holds
/// data writes its shard with `writeShard`; rank 0 then `commit`s the manifest: fsync, rename to
/// `step-NNNNNNN`, and the `COMPLETE` marker last. Until the marker exists the checkpoint does not count.
public final class PendingCheckpoint {
    public let step: Int
    /// The temporary directory (`.tmp-step-NNNNNNN`).
    public let temporary: String
    /// The final directory (`step-NNNNNNN`).
    public let final: String
    /// Seconds to sleep halfway through each shard (the `KUMO_DEBUG_CHECKPOINT_PAUSE` test hook).
    let pauseSeconds: Double

    init(step: Int, temporary: String, final: String, pauseSeconds: Double) {
        self.step = step
        self.temporary = temporary
        self.final = final
        self.pauseSeconds = pauseSeconds
    }

    /// Writes and syncs rank `rank`'s shard: a JSON header with `state`, then `sections` as fp32.
    public func writeShard(rank: Int, state: TrainState, sections: [ShardContent]) throws -> ManifestFile {
        let name = ShardFormat.fileName(rank: rank)
        let path = temporary + "/" + name
        var placed: [ShardSection] = []
        var headerBytes: [UInt8] = []
        // The data offsets depend on the header's length and the header holds them: iterate to a fixed point.
        var dataStart = ShardFormat.aligned(ShardFormat.preambleBytes + 256)
        while true {
            var offset = dataStart
            placed = sections.map { s in
                defer { offset = ShardFormat.aligned(offset + s.count * 4) }
                return ShardSection(name: s.name, flatStart: s.flatStart, count: s.count, offset: offset)
            }
            headerBytes = try Array(JSONEncoder().encode(ShardHeader(rank: rank, state: state, sections: placed)))
            let needed = ShardFormat.aligned(ShardFormat.preambleBytes + headerBytes.count)
            if needed <= dataStart { break }
            dataStart = needed
        }
        let file = try CheckpointFile.create(path)
        var preamble = ShardFormat.magic
        withUnsafeBytes(of: ShardFormat.version.littleEndian) { preamble += $0 }
        withUnsafeBytes(of: UInt32(headerBytes.count).littleEndian) { preamble += $0 }
        try file.write(preamble + headerBytes)
        for (i, (s, p)) in zip(sections, placed).enumerated() {
            if i == 1 && pauseSeconds > 0 {
                FileHandle.standardError.write(
                    Data("checkpoint: pausing \(pauseSeconds) s inside the write of \(path)\n".utf8))
                Thread.sleep(forTimeInterval: pauseSeconds)
            }
            try file.pad(to: p.offset)
            try file.write(UnsafeRawPointer(s.pointer), count: s.count * 4)
        }
        try file.sync()
        return ManifestFile(
            name: name, rank: rank, bytes: file.written, crc32: file.crc,
            sections: sections.map { ManifestSection(name: $0.name, flatStart: $0.flatStart, count: $0.count) })
    }

    /// Writes the manifest, syncs, renames the directory to its final name and writes `COMPLETE`.
    public func commit(_ manifest: CheckpointManifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let bytes = try Array(encoder.encode(manifest))
        try CheckpointFile.writeSynced(temporary + "/manifest.json", bytes)
        try CheckpointFile.syncDirectory(temporary)
        let fm = FileManager.default
        let parent = (final as NSString).deletingLastPathComponent
        if fm.fileExists(atPath: final) {
            // A checkpoint of the same step from an abandoned trajectory (a resume from an older one).
            let old = parent + "/.old-" + (final as NSString).lastPathComponent
            try? fm.removeItem(atPath: old)
            try move(final, old)
            try? fm.removeItem(atPath: old)
        }
        try move(temporary, final)
        try CheckpointFile.syncDirectory(parent)
        let crc = bytes.withUnsafeBytes { CheckpointFile.crc32(0, $0.baseAddress!, $0.count) }
        try CheckpointFile.writeSynced(
            final + "/" + CheckpointStore.completeMarker, Array("manifest_crc32 \(crc)\n".utf8))
        try CheckpointFile.syncDirectory(final)
    }

    private func move(_ from: String, _ to: String) throws {
        if rename(from, to) != 0 {
            throw CheckpointError(.io, from, "cannot rename to \(to): \(String(cString: strerror(errno)))")
        }
    }
}
