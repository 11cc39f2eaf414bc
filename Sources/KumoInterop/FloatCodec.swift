import Foundation

/// Little-endian F32, F16 and BF16 bytes widened to Float.
enum FloatCodec {
    /// IEEE half precision → single precision, exactly (subnormals, infinities and NaNs included).
    static func half(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa × 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 31:
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
        }
    }

    /// bfloat16 → single precision (the upper half of its bits).
    static func bfloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    static func f32(_ bytes: Data) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
    }

    static func f16(_ bytes: Data) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 2)).map {
                half(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))
            }
        }
    }

    static func bf16(_ bytes: Data) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 2)).map {
                bfloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))
            }
        }
    }
}
