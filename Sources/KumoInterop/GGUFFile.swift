import Foundation

/// One metadata value of a GGUF file.
public enum GGUFValue: Equatable, Sendable {
    case unsigned(UInt64)
    case signed(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    /// The value as an Int, if it is an integer that fits.
    public var int: Int? {
        switch self {
        case .unsigned(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .signed(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a Double, if it is a number.
    public var double: Double? {
        switch self {
        case .float(let v): return v
        case .unsigned, .signed: return int.map(Double.init)
        default: return nil
        }
    }
}

/// ggml tensor types Kumo dequantizes.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4x0 = 2
    case q4x1 = 3
    case q8x0 = 8
    case bf16 = 30

    /// Elements per block and bytes per block.
    var block: (elements: Int, bytes: Int) {
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4x0: return (32, 18)
        case .q4x1: return (32, 20)
        case .q8x0: return (32, 34)
        }
    }
}

/// A GGUF file (version 2 or 3), memory-mapped: metadata, tensor descriptions and aligned
/// tensor data. Counts, string and array lengths, shapes and data ranges are all checked
/// against the file size before anything is allocated.
public struct GGUFFile {
    /// One tensor's description.
    public struct TensorInfo: Sendable {
        public var name: String
        /// ggml order: dims[0] is the contiguous (fastest) dimension.
        public var dims: [Int]
        public var type: GGMLType
        /// Byte range inside the file.
        public var range: Range<Int>
        /// Element count.
        public var count: Int { dims.reduce(1, *) }
    }

    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order.
    public let tensorOrder: [String]
    let data: Data

    static let maxDims = 4
    static let maxArrayDepth = 8

    /// Reads and validates the header of `path`; tensor data is read on demand.
    public init(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw InteropError(path, "cannot be read")
        }
        try self.init(data: data, path: path)
    }

    /// Validates the bytes of a GGUF file; `path` names it in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        var r = ByteReader(data: data, path: path)
        let magic = try r.bytes(4, "the magic")
        guard magic == Data("GGUF".utf8) else { throw InteropError(path, at: 0, "not a GGUF file (magic \(magic))") }
        version = try r.integer(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            throw InteropError(path, at: 4, "GGUF version \(version) is not supported; Kumo reads versions 2 and 3")
        }
        // A tensor description takes at least 8 + 4 + 8 + 4 + 8 bytes and a key-value pair 8 + 4 + 1.
        let tensorCount = try r.count("tensor count", limit: r.remaining / 32)
        let kvCount = try r.count("metadata count", limit: r.remaining / 13)
        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let at = r.offset
            let key = try Self.string(&r, "metadata key")
            let type = try r.integer(UInt32.self, "type of \(key)")
            guard metadata[key] == nil else { throw InteropError(path, at: at, "metadata key \(key) appears twice") }
            metadata[key] = try Self.value(&r, type: type, key: key, depth: 0)
        }
        self.metadata = metadata
        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v <= 1 << 16, v & (v - 1) == 0 else {
                throw InteropError(path, "general.alignment must be a power of two up to 65536, got \(a)")
            }
            alignment = v
        }
        var infos: [(String, [Int], GGMLType, Int, Int)] = []
        for _ in 0..<tensorCount {
            let at = r.offset
            let name = try Self.string(&r, "tensor name")
            let nDims = Int(try r.integer(UInt32.self, "dimension count of \(name)"))
            guard nDims >= 1, nDims <= Self.maxDims else {
                throw InteropError(
                    path, at: at, "tensor \(name) has \(nDims) dimensions; GGUF allows 1 to \(Self.maxDims)")
            }
            var dims: [Int] = []
            var elements = 1
            for _ in 0..<nDims {
                let d = try r.count("dimension of \(name)", limit: data.count * 2)
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= data.count * 2 else {
                    throw InteropError(path, at: at, "tensor \(name) shape is larger than the file could hold")
                }
                elements = product
                dims.append(d)
            }
            let rawType = try r.integer(UInt32.self, "type of \(name)")
            guard let type = GGMLType(rawValue: rawType) else {
                throw InteropError(
                    path, at: at,
                    "tensor \(name) has ggml type \(rawType); Kumo reads F32, F16, BF16, Q8_0, Q4_0 and Q4_1")
            }
            guard dims[0] % type.block.elements == 0 else {
                throw InteropError(path, at: at, "tensor \(name) rows of \(dims[0]) are not whole \(type) blocks")
            }
            let offset = try r.count("data offset of \(name)", limit: data.count)
            guard offset % alignment == 0 else {
                throw InteropError(path, at: at, "tensor \(name) data offset \(offset) is not \(alignment)-aligned")
            }
            infos.append((name, dims, type, offset, elements / type.block.elements * type.block.bytes))
        }
        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        var tensors: [String: TensorInfo] = [:]
        for (name, dims, type, offset, bytes) in infos {
            let start = dataStart + offset
            guard start <= data.count, bytes <= data.count - start else {
                throw InteropError(
                    path, at: start, "tensor \(name) (\(bytes) bytes) runs past the end of the file; it is truncated")
            }
            guard tensors[name] == nil else { throw InteropError(path, "tensor \(name) appears twice") }
            tensors[name] = TensorInfo(name: name, dims: dims, type: type, range: start..<(start + bytes))
        }
        let sorted = tensors.values.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw InteropError(path, at: b.range.lowerBound, "tensors \(a.name) and \(b.name) overlap")
        }
        self.tensors = tensors
        tensorOrder = infos.map(\.0)
    }

    private static func string(_ r: inout ByteReader, _ what: String) throws -> String {
        let length = try r.count("length of \(what)", limit: r.remaining)
        return String(decoding: try r.bytes(length, what), as: UTF8.self)
    }

    private static func value(_ r: inout ByteReader, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .unsigned(UInt64(try r.integer(UInt8.self, key)))
        case 1: return .signed(Int64(try r.integer(Int8.self, key)))
        case 2: return .unsigned(UInt64(try r.integer(UInt16.self, key)))
        case 3: return .signed(Int64(try r.integer(Int16.self, key)))
        case 4: return .unsigned(UInt64(try r.integer(UInt32.self, key)))
        case 5: return .signed(Int64(try r.integer(Int32.self, key)))
        case 6:
            // A float32 is taken as its shortest decimal form (1e-5, not 9.99999974e-06), as written.
            let f = Float(bitPattern: try r.integer(UInt32.self, key))
            return .float(f.isFinite ? Double("\(f)") ?? Double(f) : Double(f))
        case 7:
            let at = r.offset
            let b = try r.integer(UInt8.self, key)
            guard b <= 1 else { throw r.error("\(key): bool byte \(b) is neither 0 nor 1", at: at) }
            return .bool(b == 1)
        case 8: return .string(try string(&r, key))
        case 9:
            guard depth < maxArrayDepth else { throw r.error("\(key): arrays nested deeper than \(maxArrayDepth)") }
            let elementType = try r.integer(UInt32.self, "element type of \(key)")
            // The count cannot exceed what the remaining bytes could hold.
            let count = try r.count("element count of \(key)", limit: r.remaining / minimumSize(elementType))
            var values: [GGUFValue] = []
            for _ in 0..<count { values.append(try value(&r, type: elementType, key: key, depth: depth + 1)) }
            return .array(values)
        case 10: return .unsigned(try r.integer(UInt64.self, key))
        case 11: return .signed(try r.integer(Int64.self, key))
        case 12: return .float(Double(bitPattern: try r.integer(UInt64.self, key)))
        default: throw r.error("\(key): unknown GGUF value type \(type)")
        }
    }

    /// The fewest bytes a value of `type` takes in the file.
    private static func minimumSize(_ type: UInt32) -> Int {
        switch type {
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        case 9: return 12
        default: return 1
        }
    }

    /// The values of tensor `name`, dequantized to Float.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw InteropError(path, "no tensor named \(name)") }
        return GGMLDequantizer.dequantize(data.subdata(in: t.range), type: t.type, count: t.count)
    }
}
