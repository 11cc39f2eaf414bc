import Foundation

/// Writes GGUF version 3 bytes for tests: metadata of any value type and raw tensor data.
struct GGUFBuilder {
    /// One encoded metadata value: its GGUF type code and bytes.
    struct Value {
        var type: UInt32
        var bytes: Data

        static func u32(_ v: UInt32) -> Value { Value(type: 4, bytes: le(v)) }
        static func i32(_ v: Int32) -> Value { Value(type: 5, bytes: le(v)) }
        static func f32(_ v: Float) -> Value { Value(type: 6, bytes: le(v.bitPattern)) }
        static func u64(_ v: UInt64) -> Value { Value(type: 10, bytes: le(v)) }
        static func f64(_ v: Double) -> Value { Value(type: 12, bytes: le(v.bitPattern)) }
        static func bool(_ v: Bool) -> Value { Value(type: 7, bytes: Data([v ? 1 : 0])) }
        static func string(_ s: String) -> Value { Value(type: 8, bytes: GGUFBuilder.string(s)) }
        /// An array of values that all have the type of the first.
        static func array(_ values: [Value], of type: UInt32) -> Value {
            var d = le(type)
            d.append(le(UInt64(values.count)))
            for v in values { d.append(v.bytes) }
            return Value(type: 9, bytes: d)
        }
    }

    var metadata: [(String, Value)] = []
    /// (name, ggml dims, ggml type, data bytes).
    var tensors: [(String, [Int], UInt32, Data)] = []
    var alignment = 32

    static func le<T: FixedWidthInteger>(_ v: T) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }

    static func string(_ s: String) -> Data {
        var d = le(UInt64(s.utf8.count))
        d.append(Data(s.utf8))
        return d
    }

    /// The file's bytes.
    func build() -> Data {
        var d = Data("GGUF".utf8)
        d.append(Self.le(UInt32(3)))
        d.append(Self.le(UInt64(tensors.count)))
        d.append(Self.le(UInt64(metadata.count)))
        for (key, value) in metadata {
            d.append(Self.string(key))
            d.append(Self.le(value.type))
            d.append(value.bytes)
        }
        var offset = 0
        var offsets: [Int] = []
        for (_, _, _, bytes) in tensors {
            offsets.append(offset)
            offset += (bytes.count + alignment - 1) / alignment * alignment
        }
        for ((name, dims, type, _), off) in zip(tensors, offsets) {
            d.append(Self.string(name))
            d.append(Self.le(UInt32(dims.count)))
            for dim in dims { d.append(Self.le(UInt64(dim))) }
            d.append(Self.le(type))
            d.append(Self.le(UInt64(off)))
        }
        d.append(Data(count: (alignment - d.count % alignment) % alignment))
        for (_, _, _, bytes) in tensors {
            d.append(bytes)
            d.append(Data(count: (alignment - bytes.count % alignment) % alignment))
        }
        return d
    }

    /// F32 bytes of `values`.
    static func f32(_ values: [Float]) -> Data { values.reduce(into: Data()) { $0.append(le($1.bitPattern)) } }
}
