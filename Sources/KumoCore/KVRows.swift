/// How a key/value cache stores its rows.
public enum KVCacheFormat: String, Sendable, CaseIterable {
    /// fp32 keys and values: decoding reads exactly what the full forward pass computes.
    case fp32
    /// bf16 keys and values (rounded to nearest even, read back as fp32): half the bytes per position.
    case bf16

    /// bf16 on CPUs with bf16 units (AVX512_BF16), where its rounding runs in hardware; fp32 elsewhere.
    public static var preferred: KVCacheFormat { BF16GEMM.cpuHasBF16Units ? .bf16 : .fp32 }

    /// Bytes of one cached element.
    public var bytes: Int { self == .fp32 ? 4 : 2 }
}

/// Cached key or value rows in their storage format (bf16 values as `UInt16`, the upper half of an fp32).
public enum KVRows {
    /// fp32 elements.
    case fp32(UnsafeMutablePointer<Float>)
    /// bf16 elements.
    case bf16(UnsafeMutablePointer<UInt16>)

    /// The rows from element `elements` on.
    public func advanced(by elements: Int) -> KVRows {
        switch self {
        case .fp32(let p): .fp32(p + elements)
        case .bf16(let p): .bf16(p + elements)
        }
    }

    /// Stores `count` floats from `source` at the start of these rows (rounded in a bf16 cache).
    public func store(_ source: UnsafePointer<Float>, count: Int) {
        switch self {
        case .fp32(let p): p.update(from: source, count: count)
        case .bf16(let p): BF16.round(source, into: p, count: count)
        }
    }

    /// Copies `count` elements from `source`, rows of the same format.
    public func copy(from source: KVRows, count: Int) {
        switch (self, source) {
        case (.fp32(let p), .fp32(let s)): p.update(from: s, count: count)
        case (.bf16(let p), .bf16(let s)): p.update(from: s, count: count)
        default: preconditionFailure("key/value rows of different formats")
        }
    }
}

/// An element of cached rows as decode attention reads it: widened to fp32.
protocol KVElement {
    /// Eight elements from index i, as floats (unaligned).
    static func load8(_ p: UnsafePointer<Self>, _ i: Int) -> SIMD8<Float>
    /// Element i as a float.
    static func float(_ p: UnsafePointer<Self>, _ i: Int) -> Float
}

extension Float: KVElement {
    @inline(__always) static func load8(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> { p.load8(i) }
    @inline(__always) static func float(_ p: UnsafePointer<Float>, _ i: Int) -> Float { p[i] }
}

/// bf16 as stored: an fp32's upper 16 bits, widened by a shift.
extension UInt16: KVElement {
    @inline(__always) static func load8(_ p: UnsafePointer<UInt16>, _ i: Int) -> SIMD8<Float> {
        // Lane by lane, which compiles to vpmovzxwd + vpslld (SIMD8<UInt32>(truncatingIfNeeded:) is a call).
        let h = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<UInt16>.self)
        let wide = SIMD8<UInt32>(
            UInt32(h[0]), UInt32(h[1]), UInt32(h[2]), UInt32(h[3]), UInt32(h[4]), UInt32(h[5]), UInt32(h[6]),
            UInt32(h[7]))
        return unsafeBitCast(wide &<< 16, to: SIMD8<Float>.self)
    }
    @inline(__always) static func float(_ p: UnsafePointer<UInt16>, _ i: Int) -> Float { BF16.float(p[i]) }
}
