import Foundation
import KumoModel

/// Floats of a flat buffer that a shard stores: the global runs of `section`, held one after
/// another at `pointer`.
public struct ShardContent {
    public var section: ManifestSection
    public var pointer: UnsafePointer<Float>

    /// Describes `count` floats at `pointer`, element `flatStart` of the global buffer `name`.
    public init(name: String, flatStart: Int, pointer: UnsafePointer<Float>, count: Int) {
        self.init(section: ManifestSection(name: name, flatStart: flatStart, count: count), pointer: pointer)
    }

    public init(section: ManifestSection, pointer: UnsafePointer<Float>) {
        self.section = section
        self.pointer = pointer
    }

    /// The contents of the buffer `name` at `base` (a rank's flat buffer) given as runs between it
    /// and the global buffer, in local order: consecutive runs merge into one range, or into one
    /// strided section when they are equal rows a fixed distance apart (a column-sliced tensor).
    public static func merging(_ runs: [ShardRun], of name: String, at base: UnsafePointer<Float>) -> [ShardContent] {
        var out: [ShardContent] = []
        var localEnd = -1
        for r in runs where r.count > 0 {
            if r.local == localEnd, let merged = out.last?.section.appending(r.whole, r.count) {
                out[out.count - 1].section = merged
            } else {
                out.append(ShardContent(name: name, flatStart: r.whole, pointer: base + r.local, count: r.count))
            }
            localEnd = r.local + r.count
        }
        return out
    }

    /// Floats stored.
    var floats: Int { section.count * section.runs }
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
                defer { offset = ShardFormat.aligned(offset + s.floats * 4) }
                return ShardSection(section: s.section, offset: offset)
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
            try file.write(UnsafeRawPointer(s.pointer), count: s.floats * 4)
        }
        try file.sync()
        return ManifestFile(
            name: name, rank: rank, bytes: file.written, crc32: file.crc,
            sections: sections.map(\.section))
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

    /// Removes what a failed write left (the temporary directory, or the final one when the
    /// `COMPLETE` marker is missing), so that a full disk does not stay full of half a checkpoint.
    public func discard() {
        let fm = FileManager.default
        try? fm.removeItem(atPath: temporary)
        if !fm.fileExists(atPath: final + "/" + CheckpointStore.completeMarker) {
            try? fm.removeItem(atPath: final)
        }
    }

    private func move(_ from: String, _ to: String) throws {
        if rename(from, to) != 0 {
            throw CheckpointError(.io, from, "cannot rename to \(to): \(String(cString: strerror(errno)))")
        }
    }
}
