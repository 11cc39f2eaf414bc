import CZlib
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A POSIX file descriptor with whole-buffer reads and writes; errors name the file.
final class CheckpointFile {
    let path: String
    private let fd: Int32
    /// Running zlib CRC-32 of everything written.
    private(set) var crc: UInt32 = 0
    private(set) var written = 0

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Creates (or truncates) `path` for writing.
    static func create(_ path: String) throws -> CheckpointFile {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw CheckpointError(.io, path, "cannot create: \(errnoText())") }
        return CheckpointFile(path: path, fd: fd)
    }

    /// Opens `path` for reading.
    static func openForReading(_ path: String) throws -> CheckpointFile {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            let missing = errno == ENOENT
            throw CheckpointError(missing ? .missingFile : .io, path, missing ? "file is missing" : errnoText())
        }
        return CheckpointFile(path: path, fd: fd)
    }

    /// The file's size in bytes.
    func size() throws -> Int {
        var st = stat()
        if fstat(fd, &st) != 0 { throw CheckpointError(.io, path, "cannot stat: \(errnoText())") }
        return Int(st.st_size)
    }

    /// Appends `count` bytes, updating the CRC.
    func write(_ bytes: UnsafeRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let n = systemWrite(fd, bytes + done, min(count - done, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw CheckpointError(.io, path, "write failed after \(written + done) bytes: \(errnoText())") }
            done += n
        }
        crc = Self.crc32(crc, bytes, count)
        written += count
    }

    /// Appends `bytes`.
    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0.baseAddress!, count: $0.count) }
    }

    /// Appends zero bytes up to `offset`.
    func pad(to offset: Int) throws {
        if offset > written { try write([UInt8](repeating: 0, count: offset - written)) }
    }

    /// Flushes the file's data to stable storage.
    func sync() throws {
        if fsync(fd) != 0 { throw CheckpointError(.io, path, "fsync failed: \(errnoText())") }
    }

    /// Reads exactly `count` bytes at `offset` into `into`.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, min(count - done, 1 << 30), off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                throw CheckpointError(
                    .wrongSize, path, "ends at byte \(offset + done); expected \(count - done) more bytes")
            }
            done += n
        }
    }

    /// Reads `count` bytes at `offset`.
    func read(count: Int, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: count, at: offset) }
        return bytes
    }

    /// The CRC-32 of the first `count` bytes, read in 4 MiB pieces.
    func checksum(count: Int) throws -> UInt32 {
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var crc: UInt32 = 0
        var offset = 0
        while offset < count {
            let n = min(chunk, count - offset)
            try read(into: buffer, count: n, at: offset)
            crc = Self.crc32(crc, buffer, n)
            offset += n
        }
        return crc
    }

    /// zlib's CRC-32 of `count` bytes continuing from `crc`.
    static func crc32(_ crc: UInt32, _ bytes: UnsafeRawPointer, _ count: Int) -> UInt32 {
        var c = UInt(crc)
        var offset = 0
        while offset < count {
            let n = min(count - offset, 1 << 30)
            c = CZlib.crc32(c, bytes.assumingMemoryBound(to: UInt8.self) + offset, UInt32(n))
            offset += n
        }
        return UInt32(truncatingIfNeeded: c)
    }

    /// Flushes a directory's entries (new files, renames) to stable storage.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        if fd < 0 { throw CheckpointError(.io, path, "cannot open directory: \(errnoText())") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw CheckpointError(.io, path, "fsync of the directory failed: \(errnoText())") }
    }

    /// Writes `bytes` to `path` and syncs the file.
    static func writeSynced(_ path: String, _ bytes: [UInt8]) throws {
        let file = try create(path)
        try file.write(bytes)
        try file.sync()
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#else
    private let systemWrite = Darwin.write
#endif
