import Foundation

/// Turns ggml tensor data (F32, F16, BF16, Q8_0, Q4_0, Q4_1) into Float values.
enum GGMLDequantizer {
    /// Dequantizes `count` elements of `type` from `bytes` (sized by the caller to whole blocks).
    static func dequantize(_ bytes: Data, type: GGMLType, count: Int) -> [Float] {
        switch type {
        case .f32: return FloatCodec.f32(bytes)
        case .f16: return FloatCodec.f16(bytes)
        case .bf16: return FloatCodec.bf16(bytes)
        case .q8x0, .q4x0, .q4x1:
            var out = [Float](repeating: 0, count: count)
            let blocks = count / 32
            bytes.withUnsafeBytes { raw in
                out.withUnsafeMutableBufferPointer { o in
                    for b in 0..<blocks {
                        block(raw, at: b * type.block.bytes, type: type, into: o.baseAddress! + b * 32)
                    }
                }
            }
            return out
        }
    }

    /// One 32-element block. Q8_0: scale d, 32 int8 q, x = d·q. Q4_0: d, 16 bytes of nibbles
    /// (low nibbles elements 0-15, high nibbles 16-31), x = d·(q − 8). Q4_1: d, minimum m,
    /// nibbles as Q4_0, x = d·q + m.
    private static func block(
        _ raw: UnsafeRawBufferPointer, at offset: Int, type: GGMLType, into out: UnsafeMutablePointer<Float>
    ) {
        func half(_ at: Int) -> Float {
            FloatCodec.half(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + at, as: UInt16.self)))
        }
        let d = half(0)
        switch type {
        case .q8x0:
            for i in 0..<32 { out[i] = d * Float(Int8(bitPattern: raw[offset + 2 + i])) }
        case .q4x0:
            for i in 0..<16 {
                let q = raw[offset + 2 + i]
                out[i] = d * Float(Int(q & 0x0F) - 8)
                out[i + 16] = d * Float(Int(q >> 4) - 8)
            }
        case .q4x1:
            let m = half(2)
            for i in 0..<16 {
                let q = raw[offset + 4 + i]
                out[i] = d * Float(q & 0x0F) + m
                out[i + 16] = d * Float(q >> 4) + m
            }
        case .f32, .f16, .bf16:
            preconditionFailure("\(type) has no blocks")
        }
    }
}
