import Foundation

/// A checkpoint directory whose marker, manifest, file sizes, checksums and shard headers were all
/// checked against the files and against the model that will load it, before anything is read into it.
public struct VerifiedCheckpoint {
    /// The checkpoint directory.
    public let path: String
    public let manifest: CheckpointManifest
    /// Each rank's shard header, by rank.
    public let headers: [ShardHeader]

    /// Verifies the checkpoint at `path` for a model whose flat buffer has `flatCount` floats laid
    /// out as `tensors`; throws a `CheckpointError` naming the first file at fault.
    public static func open(_ path: String, tensors: [ManifestTensor], flatCount: Int) throws -> VerifiedCheckpoint {
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
        let manifest: CheckpointManifest
        do {
            manifest = try JSONDecoder().decode(CheckpointManifest.self, from: Data(bytes))
        } catch {
            throw CheckpointError(.malformed, manifestPath, "not a checkpoint manifest: \(error)")
        }
        try check(manifest, manifestPath, tensors: tensors, flatCount: flatCount)
        var headers: [ShardHeader] = []
        for entry in manifest.files.sorted(by: { $0.rank < $1.rank }) {
            let file = try CheckpointFile.openForReading(path + "/" + entry.name)
            let size = try file.size()
            guard size == entry.bytes else {
                throw CheckpointError(
                    .wrongSize, file.path,
                    "has \(size) bytes but the manifest says \(entry.bytes): the file is truncated or was changed")
            }
            let actual = try file.checksum(count: size)
            guard actual == entry.crc32 else {
                throw CheckpointError(
                    .checksum, file.path,
                    "CRC-32 \(actual) differs from \(entry.crc32) in the manifest: the file was changed")
            }
            headers.append(try readHeader(file, size: size, rank: entry.rank, manifest: manifest))
        }
        return VerifiedCheckpoint(path: path, manifest: manifest, headers: headers)
    }

    /// Reads rank `rank`'s sections into `destinations` (each a whole flat buffer, keyed by section
    /// name) and returns its training state.
    public func load(rank: Int, into destinations: [String: UnsafeMutablePointer<Float>]) throws -> TrainState {
        let header = headers[rank]
        let file = try CheckpointFile.openForReading(path + "/" + ShardFormat.fileName(rank: rank))
        for section in header.sections {
            guard let base = destinations[section.name] else { continue }
            try file.read(into: base + section.flatStart, count: section.count * 4, at: section.offset)
        }
        return header.state
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

    private static func check(
        _ m: CheckpointManifest, _ path: String, tensors: [ManifestTensor], flatCount: Int
    ) throws {
        func fail(_ message: String) -> CheckpointError { CheckpointError(.malformed, path, message) }
        guard m.format == CheckpointManifest.formatName, m.version == CheckpointManifest.currentVersion else {
            throw fail(
                "format \(m.format) version \(m.version); this build reads \(CheckpointManifest.formatName) "
                    + "version \(CheckpointManifest.currentVersion)")
        }
        guard m.step >= 0 else { throw fail("step \(m.step) is negative") }
        let l = m.layout
        guard l == .single else {
            throw CheckpointError(
                .mismatch, path,
                "written by \(l.worldSize) ranks (data \(l.dataParallel), tensor \(l.tensorParallel), pipeline "
                    + "\(l.pipelineParallel), ZeRO \(l.zeroStage)); this build loads single-process checkpoints")
        }
        guard m.files.count == l.worldSize,
            m.files.map(\.rank).sorted() == Array(0..<l.worldSize),
            m.files.allSatisfy({ $0.name == ShardFormat.fileName(rank: $0.rank) && $0.bytes >= 0 })
        else {
            throw fail("files must be rank-NNNNN.bin, one per rank 0..<\(l.worldSize), with sizes >= 0")
        }
        guard m.flatCount == flatCount else {
            throw CheckpointError(
                .mismatch, path, "holds \(m.flatCount) parameters but the model has \(flatCount): another model shape")
        }
        if let i = tensors.indices.first(where: { $0 >= m.tensors.count || m.tensors[$0] != tensors[$0] })
            ?? (m.tensors.count > tensors.count ? tensors.count : nil)
        {
            let found = i < m.tensors.count ? "\(m.tensors[i].name) \(m.tensors[i].shape)" : "nothing"
            let wanted = i < tensors.count ? "\(tensors[i].name) \(tensors[i].shape)" : "nothing"
            throw CheckpointError(
                .mismatch, path, "tensor \(i) is \(found) but the model expects \(wanted): another model shape")
        }
    }

    private static func readHeader(
        _ file: CheckpointFile, size: Int, rank: Int, manifest: CheckpointManifest
    ) throws -> ShardHeader {
        func fail(_ message: String) -> CheckpointError { CheckpointError(.malformed, file.path, message) }
        guard size >= ShardFormat.preambleBytes else { throw fail("\(size) bytes, shorter than the 16-byte preamble") }
        let preamble = try file.read(count: ShardFormat.preambleBytes, at: 0)
        guard Array(preamble[0..<8]) == ShardFormat.magic else { throw fail("byte 0: not a Kumo shard (magic)") }
        let version = preamble[8..<12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard version == ShardFormat.version else {
            throw fail("byte 8: shard version \(version); this build reads \(ShardFormat.version)")
        }
        let length = Int(preamble[12..<16].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard length <= ShardFormat.maxHeaderBytes, length <= size - ShardFormat.preambleBytes else {
            throw fail("byte 12: header length \(length) exceeds the file's \(size) bytes")
        }
        let header: ShardHeader
        do {
            header = try JSONDecoder().decode(
                ShardHeader.self, from: Data(try file.read(count: length, at: ShardFormat.preambleBytes)))
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw fail("byte 16: shard header is not valid: \(error)")
        }
        guard header.rank == rank else { throw fail("header says rank \(header.rank), the manifest \(rank)") }
        guard header.sections.map(\.name).sorted() == ShardFormat.sectionNames.sorted() else {
            throw fail("sections \(header.sections.map(\.name)); expected \(ShardFormat.sectionNames)")
        }
        let dataStart = ShardFormat.preambleBytes + length
        for s in header.sections {
            let (bytes, overflow) = s.count.multipliedReportingOverflow(by: 4)
            let (end, overflow2) = s.offset.addingReportingOverflow(bytes)
            guard s.count == manifest.flatCount, s.flatStart == 0, !overflow, !overflow2, s.offset >= dataStart,
                s.offset % 4 == 0, end <= size
            else {
                throw fail(
                    "section \(s.name): \(s.count) floats from element \(s.flatStart) at byte \(s.offset) do not fit "
                        + "the file's \(size) bytes and the \(manifest.flatCount) parameters")
            }
        }
        let st = header.state
        guard st.step == manifest.step, st.optimizerStep >= 0, st.optimizerStep <= st.step, st.dataPosition >= 0,
            st.lrScale > 0, st.lrScale.isFinite
        else {
            throw fail(
                "state out of range: step \(st.step) (manifest \(manifest.step)), optimizer step \(st.optimizerStep), "
                    + "data position \(st.dataPosition), lr scale \(st.lrScale)")
        }
        return header
    }
}
