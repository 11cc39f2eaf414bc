import Foundation
import KumoModel

/// A checkpoint directory whose marker, manifest, file sizes, checksums and shard headers were all
/// checked against the files and against the model that will load it, before anything is read into it.
public struct VerifiedCheckpoint {
    /// The checkpoint directory.
    public let path: String
    public let manifest: CheckpointManifest
    /// The shard header of each file, in the manifest's order of files.
    public let headers: [ShardHeader]
    /// The training state all shards share.
    public var state: TrainState { headers[0].state }
    /// Each flat buffer's runs, sorted by global start, with the file and byte they are stored at.
    private let pieces: [String: [Piece]]

    /// `range` of a flat buffer is stored at byte `offset` of file `file` (an index into the manifest's files).
    private struct Piece {
        var range: Range<Int>
        var file: Int
        var offset: Int
    }

    private init(path: String, manifest: CheckpointManifest, headers: [ShardHeader]) {
        self.path = path
        self.manifest = manifest
        self.headers = headers
        var pieces: [String: [Piece]] = [:]
        for (file, header) in headers.enumerated() {
            for s in header.sections {
                for i in 0..<s.section.runs {
                    pieces[s.section.name, default: []].append(
                        Piece(range: s.section.run(i), file: file, offset: s.offset + 4 * i * s.section.count))
                }
            }
        }
        self.pieces = pieces.mapValues { $0.sorted { $0.range.lowerBound < $1.range.lowerBound } }
    }

    /// Verifies the checkpoint at `path` for a model whose flat buffer has `flatCount` floats laid
    /// out as `tensors`; throws a `CheckpointError` naming the first file at fault. Without
    /// `checksums` the files' CRC-32s are not recomputed (ranks other than 0, after rank 0 verified them).
    /// A `.mismatch` (another model shape) is thrown only for a checkpoint valid in itself; a damaged
    /// one of another shape is reported as damaged.
    public static func open(
        _ path: String, tensors: [ManifestTensor], flatCount: Int, checksums: Bool = true
    ) throws -> VerifiedCheckpoint {
        let manifest = try readManifest(path)
        let manifestPath = path + "/manifest.json"
        do {
            try check(manifest, manifestPath, tensors: tensors, flatCount: flatCount)
        } catch let error as CheckpointError where error.kind == .mismatch {
            try check(manifest, manifestPath, tensors: manifest.tensors, flatCount: manifest.flatCount)
            _ = try readHeaders(path, manifest, checksums: checksums)
            throw error
        }
        return VerifiedCheckpoint(
            path: path, manifest: manifest, headers: try readHeaders(path, manifest, checksums: checksums))
    }

    /// The manifest of the checkpoint at `path`, checked against the CRC-32 its COMPLETE marker records.
    public static func readManifest(_ path: String) throws -> CheckpointManifest {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(.missingFile, path, "no such checkpoint directory")
        }
        let manifestCRC = try readMarker(path + "/" + CheckpointStore.completeMarker)
        let manifestPath = path + "/manifest.json"
        let manifestFile = try CheckpointFile.openForReading(manifestPath)
        let manifestSize = try manifestFile.size()
        guard manifestSize <= ShardFormat.maxManifestBytes else {
            throw CheckpointError(.malformed, manifestPath, "\(manifestSize) bytes, more than a manifest can be")
        }
        let bytes = try manifestFile.read(count: manifestSize, at: 0)
        let crc = bytes.withUnsafeBytes { CheckpointFile.crc32(0, $0.baseAddress!, $0.count) }
        guard crc == manifestCRC else {
            throw CheckpointError(
                .checksum, manifestPath,
                "CRC-32 \(crc) differs from \(manifestCRC) recorded in COMPLETE: the file was changed")
        }
        do {
            return try JSONDecoder().decode(CheckpointManifest.self, from: Data(bytes))
        } catch {
            throw CheckpointError(.malformed, manifestPath, "not a checkpoint manifest: \(error)")
        }
    }

    /// Checks every file's size (and CRC-32 with `checksums`) and reads its shard header.
    private static func readHeaders(_ path: String, _ manifest: CheckpointManifest, checksums: Bool) throws
        -> [ShardHeader]
    {
        var headers: [ShardHeader] = []
        for entry in manifest.files {
            let file = try CheckpointFile.openForReading(path + "/" + entry.name)
            let size = try file.size()
            guard size == entry.bytes else {
                throw CheckpointError(
                    .wrongSize, file.path,
                    "has \(size) bytes but the manifest says \(entry.bytes): the file is truncated or was changed")
            }
            let actual = checksums ? try file.checksum(count: size) : entry.crc32
            guard actual == entry.crc32 else {
                throw CheckpointError(
                    .checksum, file.path,
                    "CRC-32 \(actual) differs from \(entry.crc32) in the manifest: the file was changed")
            }
            headers.append(try readHeader(file, size: size, entry: entry, manifest: manifest))
        }
        if let i = headers.firstIndex(where: { $0.state != headers[0].state }) {
            throw CheckpointError(
                .malformed, path + "/" + manifest.files[i].name,
                "training state differs from \(manifest.files[0].name)'s: the shards come from different runs")
        }
        return headers
    }

    /// Reads the global range `range` of the flat buffer `name` into `destination` (which receives
    /// `range.count` floats), from whichever files cover it. Verification made sure they all do.
    public func read(_ name: String, _ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        try read(name, [ShardRun(local: 0, whole: range.lowerBound, count: range.count)], into: destination)
    }

    /// Reads each run's global floats of the flat buffer `name` to `base + run.local`. Reads that
    /// continue the previous one in the same file and in memory (the rows of a column-sliced
    /// tensor read back by the same tensor rank) are merged into one.
    public func read(_ name: String, _ runs: [ShardRun], into base: UnsafeMutablePointer<Float>) throws {
        let list = pieces[name] ?? []
        var files: [Int: CheckpointFile] = [:]
        var pending: (file: Int, offset: Int, destination: UnsafeMutablePointer<Float>, count: Int)?
        func flush() throws {
            guard let p = pending else { return }
            if files[p.file] == nil {
                files[p.file] = try CheckpointFile.openForReading(path + "/" + manifest.files[p.file].name)
            }
            try files[p.file]!.read(into: p.destination, count: p.count * 4, at: p.offset)
            pending = nil
        }
        for run in runs {
            let range = run.whole..<run.whole + run.count
            // The first piece that ends after the range starts.
            var lo = 0
            var hi = list.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if list[mid].range.upperBound <= range.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            for piece in list[lo...] {
                guard piece.range.lowerBound < range.upperBound else { break }
                let part = piece.range.clamped(to: range)
                let destination = base + run.local + (part.lowerBound - range.lowerBound)
                let offset = piece.offset + 4 * (part.lowerBound - piece.range.lowerBound)
                if let p = pending, p.file == piece.file, p.offset + 4 * p.count == offset,
                    p.destination + p.count == destination
                {
                    pending!.count += part.count
                } else {
                    try flush()
                    pending = (piece.file, offset, destination, part.count)
                }
            }
        }
        try flush()
    }

    /// The manifest's CRC-32 recorded in the COMPLETE marker.
    private static func readMarker(_ path: String) throws -> UInt32 {
        guard let file = try? CheckpointFile.openForReading(path) else {
            throw CheckpointError(.incomplete, path, "missing: the checkpoint's write did not finish")
        }
        let size = try file.size()
        let text = size <= 256 ? String(decoding: try file.read(count: size, at: 0), as: UTF8.self) : ""
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, fields[0] == "manifest_crc32", let crc = UInt32(fields[1]) else {
            throw CheckpointError(.malformed, path, "expected one line 'manifest_crc32 N'")
        }
        return crc
    }
}
