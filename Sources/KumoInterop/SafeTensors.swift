import Foundation
import KumoCore

/// A malformed safetensors file; the message names the file and what is wrong.
public struct SafeTensorsError: UserFacingError {
    public var description: String
}

/// A safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header of
/// tensor names → dtype, shape and byte range, then the raw data. Every length, shape and byte
/// range is checked against the file before any tensor is read or allocated.
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
    /// The largest header accepted (the reference implementation's limit).
    static let maxHeaderBytes = 100 << 20

    /// Whether the first bytes of a file (at least 9) look like safetensors: a header length, then `{`.
    public static func looksLikeSafeTensors(_ start: Data) -> Bool {
        start.count >= 9 && start[start.startIndex + 8] == UInt8(ascii: "{")
    }

    /// Reads and validates `path`.
    public init(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw SafeTensorsError(description: "\(path): cannot be read")
        }
        try self.init(data: data, path: path)
    }

    /// Validates the bytes of a safetensors file; `path` names it in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        guard data.count >= 8 else {
            throw SafeTensorsError(description: "\(path): shorter than the 8-byte header length")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw SafeTensorsError(
                description:
                    "\(path): header length \(headerLength) at byte 0 exceeds the \(Self.maxHeaderBytes)-byte limit; "
                    + "the file is not safetensors")
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw SafeTensorsError(
                description:
                    "\(path): truncated at byte \(data.count): its header alone needs \(8 + headerLength) bytes; "
                    + "copy or download the file again")
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + dataStart))
        guard let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any] else {
            throw SafeTensorsError(description: "\(path): header at byte 8 is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let payload = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else {
                    throw SafeTensorsError(description: "\(path): __metadata__ must map strings to strings")
                }
                metadata = m
                continue
            }
            let entry = try Self.entry(name, value, path: path)
            entries[name] = entry
        }
        if let end = entries.values.map(\.range.upperBound).max(), end > payload {
            throw SafeTensorsError(
                description:
                    "\(path): truncated at byte \(data.count): its tensors need \(dataStart + end) bytes; "
                    + "copy or download the file again")
        }
        let sorted = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.value.range.lowerBound < a.value.range.upperBound {
            throw SafeTensorsError(
                description: "\(path): tensors \(a.key) and \(b.key) overlap at data byte \(b.value.range.lowerBound)")
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Checks one header entry; its byte range is checked against the file's size by the caller
    /// (a range past the end means a truncated file).
    private static func entry(_ name: String, _ value: Any, path: String) throws -> Entry {
        let maxBytes: Int64 = 1 << 50
        guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
            let shapeValues = info["shape"] as? [NSNumber], let offsetValues = info["data_offsets"] as? [NSNumber],
            offsetValues.count == 2
        else { throw SafeTensorsError(description: "\(path): tensor \(name) has a malformed header entry") }
        guard let size = dtypeSizes[dtype] else {
            throw SafeTensorsError(
                description:
                    "\(path): tensor \(name) has unsupported dtype \(dtype); valid: \(dtypeSizes.keys.sorted())")
        }
        let shape = shapeValues.map(\.int64Value)
        let offsets = offsetValues.map(\.int64Value)
        guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= maxBytes
        else {
            throw SafeTensorsError(description: "\(path): tensor \(name) has an invalid byte range \(offsets)")
        }
        var elements: Int64 = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxBytes else {
                throw SafeTensorsError(description: "\(path): tensor \(name) shape \(shape) is larger than the file")
            }
            elements = product
        }
        guard elements * Int64(size) == offsets[1] - offsets[0] else {
            throw SafeTensorsError(
                description:
                    "\(path): tensor \(name) shape \(shape) × \(size) bytes does not match its "
                    + "\(offsets[1] - offsets[0])-byte range")
        }
        return Entry(dtype: dtype, shape: shape.map { Int($0) }, range: Int(offsets[0])..<Int(offsets[1]))
    }

    private func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw SafeTensorsError(description: "\(path): no tensor named \(name)") }
        return e
    }

    /// The values of a floating-point tensor (F32, F16 or BF16), widened to Float.
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        return try floats(name, elements: 0..<e.shape.reduce(1, *))
    }

    /// Elements `elements` (row-major order) of a floating-point tensor, widened to Float.
    public func floats(_ name: String, elements: Range<Int>) throws -> [Float] {
        let e = try entry(name)
        let size = Self.dtypeSizes[e.dtype] ?? 1
        guard elements.lowerBound >= 0, elements.upperBound * size <= e.range.count else {
            throw SafeTensorsError(
                description: "\(path): tensor \(name) of shape \(e.shape) has no elements \(elements)")
        }
        let start = data.startIndex + dataStart + e.range.lowerBound
        let bytes = data.subdata(in: (start + elements.lowerBound * size)..<(start + elements.upperBound * size))
        switch e.dtype {
        case "F32": return FloatCodec.f32(bytes)
        case "F16": return FloatCodec.f16(bytes)
        case "BF16": return FloatCodec.bf16(bytes)
        default:
            throw SafeTensorsError(description: "\(path): tensor \(name) is \(e.dtype), expected F32, F16 or BF16")
        }
    }

    /// The values of an I32 tensor.
    public func int32s(_ name: String) throws -> [Int32] {
        let e = try entry(name)
        guard e.dtype == "I32" else {
            throw SafeTensorsError(description: "\(path): tensor \(name) is \(e.dtype), expected I32")
        }
        return FloatCodec.f32(raw(e)).map { Int32(bitPattern: $0.bitPattern) }
    }

    private func raw(_ e: Entry) -> Data {
        let start = data.startIndex + dataStart
        return data.subdata(in: (start + e.range.lowerBound)..<(start + e.range.upperBound))
    }
}

/// Writes F32 tensors as a safetensors file, in the order given, with string metadata.
public struct SafeTensorsWriter {
    /// One tensor to write: its name, shape and values (count = product of the shape).
    public struct Tensor {
        public var name: String
        public var shape: [Int]
        public var values: UnsafeBufferPointer<Float>

        /// A tensor over `values`, which must stay valid until the write ends.
        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes `tensors` and `metadata` to `path` (through a temporary file renamed into place).
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pads with spaces so the data starts 8-byte aligned, as the reference writer does.
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary)
        else { throw SafeTensorsError(description: "\(path): cannot be written") }
        var length = UInt64(json.count).littleEndian
        handle.write(Data(bytes: &length, count: 8))
        handle.write(json)
        for t in tensors {
            handle.write(Data(buffer: t.values))
        }
        try handle.close()
        _ = try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }
}
