/// Width of the SIMD vectors used by the kernels (AVX2: 8 floats).
public let simdWidth = 8

extension UnsafePointer where Pointee == Float {
    /// Eight floats from index i (unaligned).
    @inline(__always) public func load8(_ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(self + i).loadUnaligned(as: SIMD8<Float>.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    /// Eight floats from index i (unaligned).
    @inline(__always) public func load8(_ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(self + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    /// Stores eight floats at index i (unaligned).
    @inline(__always) public func store8(_ i: Int, _ v: SIMD8<Float>) {
        UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}

/// exp(x) for eight lanes: range reduction to 2^n · e^r with |r| ≤ ln2/2 and a degree-6
/// polynomial; relative error below 3e-7. Inputs are clamped to [-87.3, 88.37] (the normal
/// float range): exp8(x) is about 1.2e-38 below it and 2.6e38 above it.
@inline(__always)
public func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let lo = SIMD8<Float>(repeating: -87.3)
    let hi = SIMD8<Float>(repeating: 88.37)  // below 127.5·ln 2, so n ≤ 127 and 2ⁿ stays finite
    var clamped = x.replacing(with: lo, where: x .< lo)
    clamped.replace(with: hi, where: clamped .> hi)
    // Adding 1.5·2²³ rounds x·log2(e) to an integer n held in the low mantissa bits,
    // avoiding float→int conversions (which lower to slow generic code for SIMD types).
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    // r = x - n·ln2 in two steps (Cody–Waite) for accuracy.
    var r = clamped - n * 0.693_145_75
    r = r - n * 1.428_606_8e-6
    var p = SIMD8<Float>(repeating: 1.0 / 720)
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let nBits = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD8<Float>.self)
    return p * scale
}

/// Horizontal sum of the eight lanes, in a fixed order (deterministic).
@inline(__always)
public func hsum(_ v: SIMD8<Float>) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    return b.x + b.y
}

/// Σ a[i]·b[i] over `count` floats, eight lanes at a time.
@inline(__always)
public func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        acc.addProduct(a.load8(i), b.load8(i))
        i += 8
    }
    var s = hsum(acc)
    while i < count {
        s += a[i] * b[i]
        i += 1
    }
    return s
}
