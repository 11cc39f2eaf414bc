import Foundation

/// A malformed safetensors file; the message names the file and what is wrong.
public struct SafeTensorsError: Error, CustomStringConvertible {
    public var description: String
}

/// A safetensors file read into memory: an 8-byte little-endian header length, a JSON header
/// of tensor names → dtype, shape and byte range, then the raw data. Offsets and sizes are
/// checked against the file before any tensor is read.
public struct SafeTensorsFile {
    /// One tensor's entry in the header.
    public struct Entry: Sendable {
        public var dtype: String
        public var shape: [Int]
        public var range: Range<Int>
    }

    public let path: String
    /// String metadata of the header's `__metadata__` entry.
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let data: Data
    private let dataStart: Int

    static let dtypeSizes = ["F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I64": 8, "F64": 8, "U8": 1, "I8": 1]

    /// Reads and validates `path`.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafeTensorsError(description: "\(path): cannot be read")
        }
        self.data = data
        guard data.count >= 8 else {
            throw SafeTensorsError(description: "\(path): shorter than the 8-byte header length")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw SafeTensorsError(
                description: "\(path): header length \(headerLength) at byte 0 exceeds the file size \(data.count)")
        }
        dataStart = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart)) as? [String: Any]
        else {
            throw SafeTensorsError(description: "\(path): header at byte 8 is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let payload = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw SafeTensorsError(description: "\(path): tensor \(name) has a malformed header entry") }
            guard let size = Self.dtypeSizes[dtype] else {
                throw SafeTensorsError(description: "\(path): tensor \(name) has unsupported dtype \(dtype)")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload else {
                throw SafeTensorsError(
                    description: "\(path): tensor \(name) byte range \(offsets) outside the \(payload)-byte data")
            }
            let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                let r = acc.0.multipliedReportingOverflow(by: d)
                return (r.partialValue, acc.1 || r.overflow)
            }
            guard !overflow, elements * size == offsets[1] - offsets[0] else {
                throw SafeTensorsError(
                    description:
                        "\(path): tensor \(name) shape \(shape) does not match its \(offsets[1] - offsets[0]) bytes")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.metadata = metadata
    }

    private func entry(_ name: String, dtype: String) throws -> Entry {
        guard let e = entries[name] else { throw SafeTensorsError(description: "\(path): no tensor named \(name)") }
        guard e.dtype == dtype else {
            throw SafeTensorsError(description: "\(path): tensor \(name) is \(e.dtype), expected \(dtype)")
        }
        return e
    }

    /// The values of an F32 tensor.
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name, dtype: "F32")
        return littleEndianValues(e, as: UInt32.self).map { Float(bitPattern: $0) }
    }

    /// The values of an I32 tensor.
    public func int32s(_ name: String) throws -> [Int32] {
        let e = try entry(name, dtype: "I32")
        return littleEndianValues(e, as: UInt32.self).map { Int32(bitPattern: $0) }
    }

    private func littleEndianValues<T: FixedWidthInteger>(_ e: Entry, as: T.Type) -> [T] {
        let bytes = data.subdata(in: (dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound))
        return bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / MemoryLayout<T>.size)).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }
}
