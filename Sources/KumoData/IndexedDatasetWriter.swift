import Foundation

/// Writes a Megatron-LM indexed dataset (`PREFIX.bin`, `PREFIX.idx`) as Megatron's
/// `IndexedDatasetBuilder` does: sequences added in order, `endDocument()` after each document.
/// Tokens stream to disk in constant memory under temporary names, renamed to the final names by
/// `finish()`; a writer dropped before `finish()` removes its temporary files.
public final class IndexedDatasetWriter {
    public let prefix: String
    public let dtype: IndexedDType
    private let binPath: String
    private let idxPath: String
    private let bin: FileHandle
    private var buffer: [UInt8] = []
    private var lengths: [Int32] = []
    private var documentIndices: [Int64] = [0]
    private var finished = false

    /// Starts a dataset at `prefix` storing tokens as `dtype`.
    public init(prefix: String, dtype: IndexedDType) throws {
        self.prefix = prefix
        self.dtype = dtype
        Self.removeStaleTemporaries(prefix: prefix)
        (binPath, idxPath) = Self.temporaryPaths(prefix: prefix, pid: getpid())
        guard FileManager.default.createFile(atPath: binPath, contents: nil) else {
            throw IndexedDatasetError(
                file: prefix + ".bin", offset: 0, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        bin = try FileHandle(forWritingTo: URL(fileURLWithPath: binPath))
        buffer.reserveCapacity(1 << 20)
    }

    /// The temporary `.bin` and `.idx` paths a writer in process `pid` uses until `finish()`.
    public static func temporaryPaths(prefix: String, pid: Int32) -> (bin: String, idx: String) {
        (prefix + ".bin.tmp-\(pid)", prefix + ".idx.tmp-\(pid)")
    }

    /// Removes the temporary files of writers at `prefix` whose process no longer runs (killed
    /// before `finish()`); returns their paths. A live writer's files are left alone.
    @discardableResult
    public static func removeStaleTemporaries(prefix: String) -> [String] {
        let directory = (prefix as NSString).deletingLastPathComponent
        let base = (prefix as NSString).lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        let stale = names.filter { name in
            guard
                let pid = [".bin.tmp-", ".idx.tmp-"].lazy.compactMap({ marker -> Int32? in
                    guard name.hasPrefix(base + marker) else { return nil }
                    return Int32(name.dropFirst(base.count + marker.count))
                }).first
            else { return false }
            return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH
        }
        let paths = stale.map { directory.isEmpty ? $0 : directory + "/" + $0 }
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
        return paths
    }

    deinit {
        try? bin.close()
        if !finished {
            try? FileManager.default.removeItem(atPath: binPath)
            try? FileManager.default.removeItem(atPath: idxPath)
        }
    }

    /// Appends one sequence (Megatron's `add_item`); a token the dtype cannot hold is an error.
    public func add(sequence tokens: [Int32]) throws {
        guard lengths.count < Int(Int32.max), tokens.count <= Int(Int32.max) else {
            throw IndexedDatasetError(file: prefix + ".idx", offset: 0, reason: "too many sequences or tokens")
        }
        for token in tokens {
            guard dtype.holds(token) else {
                throw IndexedDatasetError(
                    file: prefix + ".bin", offset: 0,
                    reason: "token \(token) of sequence \(lengths.count) does not fit \(dtype.name)")
            }
            switch dtype {
            case .uint8, .int8: buffer.append(UInt8(truncatingIfNeeded: token))
            case .int16, .uint16: withUnsafeBytes(of: UInt16(truncatingIfNeeded: token).littleEndian) { buffer += $0 }
            case .int32: withUnsafeBytes(of: token.littleEndian) { buffer += $0 }
            case .int64: withUnsafeBytes(of: Int64(token).littleEndian) { buffer += $0 }
            }
        }
        lengths.append(Int32(tokens.count))
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Marks the end of a document (Megatron's `end_document`).
    public func endDocument() {
        documentIndices.append(Int64(lengths.count))
    }

    /// Appends one document made of one sequence.
    public func add(document tokens: [Int32]) throws {
        try add(sequence: tokens)
        endDocument()
    }

    private func flush() throws {
        try bin.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes the index and moves both files to their final names.
    public func finish() throws {
        precondition(!finished, "finish() called twice")
        try flush()
        try bin.synchronize()
        var index = IndexedDataset.magic
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { index += $0 } }
        put(UInt64(1))
        index.append(dtype.rawValue)
        put(UInt64(lengths.count))
        put(UInt64(documentIndices.count))
        index.reserveCapacity(index.count + 12 * lengths.count + 8 * documentIndices.count)
        for length in lengths { put(length) }
        var pointer: Int64 = 0
        for length in lengths {
            put(pointer)
            pointer += Int64(length) * Int64(dtype.size)
        }
        for document in documentIndices { put(document) }
        try Data(index).write(to: URL(fileURLWithPath: idxPath))
        for (from, to) in [(binPath, prefix + ".bin"), (idxPath, prefix + ".idx")] {
            guard rename(from, to) == 0 else {
                throw IndexedDatasetError(
                    file: to, offset: 0, reason: "cannot move into place: \(String(cString: strerror(errno)))")
            }
        }
        finished = true
    }
}
