import CZlib
import Foundation

/// A file's bytes could not be read to the end; the message names the file.
public struct FileReadError: Error, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The file cannot be opened or read (permissions, I/O error).
        case unreadable
        /// The gzip stream ends before its end marker: the file was cut short.
        case truncatedGzip
        /// The gzip stream's bytes do not decompress (not gzip, or damaged).
        case corruptGzip
    }
    public var kind: Kind
    public var file: String
    /// The detail from the system or zlib.
    public var detail: String
    /// Compressed bytes read from the file before the error.
    public var offset: Int

    public var description: String {
        switch kind {
        case .unreadable: return "\(file): cannot be read (\(detail))"
        case .truncatedGzip: return "\(file): the gzip stream is truncated at byte \(offset) (\(detail))"
        case .corruptGzip: return "\(file): corrupt gzip data near byte \(offset) (\(detail))"
        }
    }
}

/// Reads a file line by line in constant memory, decompressing `.gz` files on the fly
/// (concatenated gzip members included).
public final class LineReader {
    /// The file being read.
    public let path: String
    /// Bytes read from the file so far (compressed bytes for `.gz`).
    public private(set) var fileBytesRead = 0
    /// Number of the line most recently returned (1-based).
    public private(set) var lineNumber = 0

    private let fd: Int32
    private let gzip: UnsafeMutablePointer<z_stream>?
    /// Compressed input handed to zlib, which keeps a pointer into it between calls.
    private let input = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 18)
    private var fileEnded = false
    private var streamEnded = false
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var block = [UInt8](repeating: 0, count: 1 << 18)

    /// Opens `path`; gzip is assumed when the name ends in `.gz`.
    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        if fd < 0 {
            input.deallocate()
            throw FileReadError(kind: .unreadable, file: path, detail: String(cString: strerror(errno)), offset: 0)
        }
        if path.hasSuffix(".gz") {
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            guard kumo_inflate_init(stream) == Z_OK else {
                stream.deallocate()
                input.deallocate()
                close(fd)
                throw FileReadError(kind: .unreadable, file: path, detail: "zlib could not start", offset: 0)
            }
            gzip = stream
        } else {
            gzip = nil
        }
    }

    deinit {
        close(fd)
        input.deallocate()
        if let gzip {
            inflateEnd(gzip)
            gzip.deallocate()
        }
    }

    /// The next line without its `\n` (a final line without one included), or nil at the end.
    /// A partial line cut off by a truncated gzip stream is not returned: the error is thrown instead.
    public func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = pending[pendingStart...].firstIndex(of: 10) {
                let line = pending[pendingStart..<newline]
                pendingStart = newline + 1
                lineNumber += 1
                return line
            }
            if pendingStart > 0 {
                pending.removeSubrange(0..<pendingStart)
                pendingStart = 0
            }
            let n = try readBlock()
            if n == 0 {
                guard !pending.isEmpty else { return nil }
                lineNumber += 1
                let line = pending[...]
                pending = []
                return line
            }
            pending.append(contentsOf: block[0..<n])
        }
    }

    /// Reads the next block of (decompressed) bytes into `block`; 0 at the end of the data.
    private func readBlock() throws -> Int {
        guard let gzip else { return try block.withUnsafeMutableBytes { try readFile(into: $0) } }
        if streamEnded { return 0 }
        return try block.withUnsafeMutableBufferPointer { out in
            gzip.pointee.next_out = out.baseAddress
            gzip.pointee.avail_out = UInt32(out.count)
            while gzip.pointee.avail_out == UInt32(out.count) {
                if gzip.pointee.avail_in == 0 {
                    let n = try readFile(into: UnsafeMutableRawBufferPointer(input))
                    if n == 0 {
                        throw FileReadError(
                            kind: .truncatedGzip, file: path, detail: "end of file inside the stream",
                            offset: fileBytesRead)
                    }
                    gzip.pointee.next_in = input.baseAddress
                    gzip.pointee.avail_in = UInt32(n)
                }
                let status = inflate(gzip, Z_NO_FLUSH)
                if status == Z_STREAM_END {
                    // Another gzip member may follow (as `cat a.gz b.gz` makes).
                    if gzip.pointee.avail_in == 0, try !moreInputFollows() {
                        streamEnded = true
                        break
                    }
                    inflateReset(gzip)
                } else if status != Z_OK && status != Z_BUF_ERROR {
                    let message = gzip.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw FileReadError(kind: .corruptGzip, file: path, detail: message, offset: fileBytesRead)
                }
            }
            return out.count - Int(gzip.pointee.avail_out)
        }
    }

    /// After a gzip member ends with its input consumed: reads more input, false when the file has ended.
    private func moreInputFollows() throws -> Bool {
        guard let gzip else { return false }
        let n = try readFile(into: UnsafeMutableRawBufferPointer(input))
        if n == 0 { return false }
        gzip.pointee.next_in = input.baseAddress
        gzip.pointee.avail_in = UInt32(n)
        return true
    }

    private func readFile(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if fileEnded { return 0 }
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileReadError(
                    kind: .unreadable, file: path, detail: String(cString: strerror(errno)), offset: fileBytesRead)
            }
            if n == 0 { fileEnded = true }
            fileBytesRead += n
            return n
        }
    }
}
