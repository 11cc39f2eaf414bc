import Foundation

/// The checks of a checkpoint's manifest and shard headers against each other, the files and the model.
extension VerifiedCheckpoint {
    /// Checks the manifest's format, layout, file list, sections and tensors against the model.
    static func check(_ m: CheckpointManifest, _ path: String, tensors: [ManifestTensor], flatCount: Int) throws {
        func fail(_ message: String) -> CheckpointError { CheckpointError(.malformed, path, message) }
        guard m.format == CheckpointManifest.formatName, m.version == CheckpointManifest.currentVersion else {
            throw fail(
                "format \(m.format) version \(m.version); this build reads \(CheckpointManifest.formatName) "
                    + "version \(CheckpointManifest.currentVersion)")
        }
        guard m.step >= 0 else { throw fail("step \(m.step) is negative") }
        try checkLayout(m.layout, path)
        let ranks = m.files.map(\.rank)
        guard !m.files.isEmpty, Set(ranks).count == ranks.count,
            m.files.allSatisfy({
                (0..<m.layout.worldSize).contains($0.rank) && $0.name == ShardFormat.fileName(rank: $0.rank)
                    && $0.bytes >= 0
            })
        else {
            throw fail(
                "files must be rank-NNNNN.bin, at most one per rank 0..<\(m.layout.worldSize), with sizes >= 0")
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
        try checkCoverage(m, path)
    }

    /// A consistent layout: world size = data × tensor × pipeline, a ZeRO stage, a shard group size.
    private static func checkLayout(_ l: ParallelLayout, _ path: String) throws {
        let (product, overflow) = l.dataParallel.multipliedReportingOverflow(by: l.tensorParallel)
        let (world, overflow2) = product.multipliedReportingOverflow(by: l.pipelineParallel)
        guard l.dataParallel >= 1, l.tensorParallel >= 1, l.pipelineParallel >= 1, !overflow, !overflow2,
            world == l.worldSize, (0...3).contains(l.zeroStage), l.shardGroupSize >= 0
        else {
            throw CheckpointError(
                .malformed, path,
                "layout: world size \(l.worldSize) must be data × tensor × pipeline = \(l.dataParallel) × "
                    + "\(l.tensorParallel) × \(l.pipelineParallel), ZeRO stage 0...3, shard group size >= 0")
        }
    }

    /// Each flat buffer's sections, over all files, must tile 0..<flatCount exactly: no gap, no
    /// overlap. Their sizes are checked first, so expanding their runs allocates at most one range
    /// per parameter.
    private static func checkCoverage(_ m: CheckpointManifest, _ path: String) throws {
        let sections = m.files.flatMap(\.sections)
        if let odd = sections.first(where: { !ShardFormat.sectionNames.contains($0.name) }) {
            throw CheckpointError(
                .malformed, path, "section \(odd.name) is not one of \(ShardFormat.sectionNames)")
        }
        for name in ShardFormat.sectionNames {
            let mine = sections.filter { $0.name == name }
            var floats = 0
            for s in mine {
                guard s.count > 0, s.runs >= 1, s.flatStart >= 0, s.runs == 1 ? s.stride == 0 : s.stride >= s.count
                else {
                    throw CheckpointError(
                        .malformed, path,
                        "section \(name): \(s.runs) runs of \(s.count) floats from element \(s.flatStart), \(s.stride) "
                            + "apart: counts and runs must be positive and the runs must not overlap")
                }
                let (span, overflow) = (s.runs - 1).multipliedReportingOverflow(by: s.stride)
                let (last, overflow2) = s.flatStart.addingReportingOverflow(span)
                let (end, overflow3) = last.addingReportingOverflow(s.count)
                let (sum, overflow4) = floats.addingReportingOverflow(s.total ?? .max)
                guard s.total != nil, !overflow, !overflow2, !overflow3, !overflow4, end <= m.flatCount else {
                    throw CheckpointError(
                        .malformed, path,
                        "section \(name): \(s.runs) runs of \(s.count) floats from element \(s.flatStart), \(s.stride) "
                            + "apart, do not fit the \(m.flatCount) parameters")
                }
                floats = sum
            }
            guard floats == m.flatCount else {
                throw CheckpointError(
                    .malformed, path,
                    "section \(name): the files hold \(floats) floats of the \(m.flatCount) parameters")
            }
            var next = 0
            for r in mine.flatMap({ s in (0..<s.runs).map(s.run) }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
                guard r.lowerBound == next else {
                    throw CheckpointError(
                        .malformed, path,
                        "section \(name): elements \(r) do not continue element \(next) (the files must tile each buffer)"
                    )
                }
                next = r.upperBound
            }
        }
    }

    /// Reads and checks the shard header of `entry` against the manifest and the file's size.
    static func readHeader(
        _ file: CheckpointFile, size: Int, entry: ManifestFile, manifest: CheckpointManifest
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
        guard header.rank == entry.rank else {
            throw fail("header says rank \(header.rank), the manifest \(entry.rank)")
        }
        let listed = header.sections.map(\.section)
        guard listed == entry.sections else {
            throw fail("the header's sections \(listed) differ from the manifest's \(entry.sections)")
        }
        let dataStart = ShardFormat.preambleBytes + length
        for s in header.sections {
            let (bytes, overflow) = (s.section.total ?? .max).multipliedReportingOverflow(by: 4)
            let (end, overflow2) = s.offset.addingReportingOverflow(bytes)
            guard !overflow, !overflow2, s.offset >= dataStart, s.offset % 4 == 0, end <= size else {
                throw fail(
                    "section \(s.section.name): \(s.section.runs) × \(s.section.count) floats at byte \(s.offset) do not fit "
                        + "the file's \(size) bytes")
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
