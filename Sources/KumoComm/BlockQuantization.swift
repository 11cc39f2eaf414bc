/// Int8 block-wise quantization with double-quantized scales, the format of ZeRO-3's
/// `parallel.quantized_allgather = "int8"`. A piece of n floats is cut into blocks of 256; each
/// block's scale is its absolute maximum / 127. The scales are quantized again in groups of 256
/// blocks: a group keeps one fp32 scale G/255 (G: the group's largest block scale) and each
/// block an 8-bit code, rounded up so the block's effective scale never falls below its own.
///
/// Encoded bytes, in order: ⌈nb/256⌉ fp32 group scales (little-endian), nb uint8 scale codes,
/// n int8 values (nb = ⌈n/256⌉ blocks): n + nb + 4⌈nb/256⌉ bytes, about 0.251 of fp32.
/// Decoding gives q · code · groupScale; each element is off by at most half its block's
/// effective scale, |x − x̂| ≤ absmax/254 + G/510.
public enum Int8Blocks {
    /// Elements per block (one scale each).
    public static let blockSize = 256
    /// Block scales per group (one fp32 scale each).
    public static let groupSize = 256

    /// Bytes `count` floats encode to.
    public static func encodedBytes(_ count: Int) -> Int {
        let blocks = (count + blockSize - 1) / blockSize
        return count + blocks + 4 * ((blocks + groupSize - 1) / groupSize)
    }

    /// Encodes `x[0..<count]` into `out[0..<encodedBytes(count)]`.
    public static func encode(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        let blocks = (count + blockSize - 1) / blockSize
        let groups = (blocks + groupSize - 1) / groupSize
        let codes = out + 4 * groups
        let values = codes + blocks
        var scales = [Float](repeating: 0, count: blocks)
        for b in 0..<blocks {
            var absmax: Float = 0
            for i in b * blockSize..<min(count, (b + 1) * blockSize) { absmax = max(absmax, abs(x[i])) }
            scales[b] = absmax / 127
        }
        for g in 0..<groups {
            let members = g * groupSize..<min(blocks, (g + 1) * groupSize)
            let groupScale = (scales[members].max() ?? 0) / 255
            out.storeBytes(of: groupScale, toByteOffset: 4 * g, as: Float.self)
            for b in members {
                let code = groupScale > 0 ? min(255, (scales[b] / groupScale).rounded(.up)) : 0
                codes.storeBytes(of: UInt8(code), toByteOffset: b, as: UInt8.self)
                let scale = code * groupScale
                for i in b * blockSize..<min(count, (b + 1) * blockSize) {
                    let q = scale > 0 ? max(-127, min(127, (x[i] / scale).rounded())) : 0
                    values.storeBytes(of: Int8(q), toByteOffset: i, as: Int8.self)
                }
            }
        }
    }

    /// Decodes `encodedBytes(count)` bytes at `bytes` into `x[0..<count]`.
    public static func decode(_ bytes: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
        let blocks = (count + blockSize - 1) / blockSize
        let groups = (blocks + groupSize - 1) / groupSize
        let codes = bytes + 4 * groups
        let values = codes + blocks
        for b in 0..<blocks {
            let groupScale = bytes.loadUnaligned(fromByteOffset: 4 * (b / groupSize), as: Float.self)
            let scale = Float(codes.load(fromByteOffset: b, as: UInt8.self)) * groupScale
            for i in b * blockSize..<min(count, (b + 1) * blockSize) {
                x[i] = Float(values.load(fromByteOffset: i, as: Int8.self)) * scale
            }
        }
    }
}

/// bfloat16, the top half of an fp32 rounded to nearest even: 2 bytes per element, relative
/// error at most 2⁻⁸ (`parallel.quantized_allgather = "bf16"`).
public enum BFloat16 {
    /// Encodes `x[0..<count]` into `2·count` bytes at `out` (little-endian).
    public static func encode(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for i in 0..<count {
            let bits = x[i].bitPattern
            let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
            out.storeBytes(of: UInt16(rounded), toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    /// Decodes `2·count` bytes at `bytes` into `x[0..<count]`.
    public static func decode(_ bytes: UnsafeRawPointer, count: Int, into x: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            x[i] = Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
        }
    }
}
