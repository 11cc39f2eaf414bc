import Foundation
import KumoCore

/// A file that does not parse; names the file, the byte offset and what is wrong.
public struct InteropError: UserFacingError {
    /// The file (or directory) at fault.
    public var path: String
    /// Byte offset of the problem, when it lies at one place in the file.
    public var offset: Int?
    /// What is wrong and what to do.
    public var message: String

    /// An error about `path`, optionally at byte `offset`.
    public init(_ path: String, at offset: Int? = nil, _ message: String) {
        self.path = path
        self.offset = offset
        self.message = message
    }

    public var description: String {
        if let offset { return "\(path): byte \(offset): \(message)" }
        return "\(path): \(message)"
    }
}

/// Bounds-checked little-endian reads through a byte buffer: every read first checks that
/// the bytes it needs are inside the file, so a short or hostile file gives an error.
struct ByteReader {
    let data: Data
    let path: String
    /// Offset of the next read, from the start of the file.
    private(set) var offset = 0

    init(data: Data, path: String) {
        self.data = data
        self.path = path
    }

    /// Bytes left after `offset`.
    var remaining: Int { data.count - offset }

    func error(_ message: String, at: Int? = nil) -> InteropError { InteropError(path, at: at ?? offset, message) }

    mutating func bytes(_ count: Int, _ what: String) throws -> Data {
        guard count >= 0, count <= remaining else {
            throw error("\(what) needs \(count) bytes but only \(remaining) remain; the file is truncated or corrupt")
        }
        let start = data.startIndex + offset
        offset += count
        return data.subdata(in: start..<(start + count))
    }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw error("\(what) is cut off by the end of the file") }
        let value = data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        offset += size
        return value
    }

    /// A u64 that must fit an Int and be at most `limit`.
    mutating func count(_ what: String, limit: Int) throws -> Int {
        let at = offset
        let value = try integer(UInt64.self, what)
        guard value <= UInt64(limit) else {
            throw error("\(what) \(value) exceeds the \(limit) that the rest of the file could hold", at: at)
        }
        return Int(value)
    }

    mutating func skip(to position: Int) throws {
        guard position >= offset, position <= data.count else {
            throw error("cannot move to byte \(position) in a \(data.count)-byte file")
        }
        offset = position
    }
}
