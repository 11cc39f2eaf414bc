import Foundation

@testable import KumoCore

/// The attention kernel Kumo used before the flash-style one, kept as the reference its results
/// must match: it stores every head's T×T probabilities ([B, H, T, T]) from forward for backward.
/// Queries go in blocks of `block` rows, each against the keys up to its last row.
enum BlockedAttentionReference {
    /// Query rows per block.
    static let block = 64

    /// Floats of the probabilities forward keeps.
    static func probsCount(_ shape: AttentionShape) -> Int { shape.batch * shape.heads * shape.seqLen * shape.seqLen }

    /// Forward; keeps the probabilities in `probs` ([B, H, T, T]) for the backward pass.
    /// Entries above the diagonal that fall outside a block's key range are left unwritten.
    static func forward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, shape: AttentionShape
    ) {
        let t = shape.seqLen
        let d = shape.headDim
        let scale = 1 / Float(d).squareRoot()
        parallelFor(shape.batch * shape.heads) { task in
            let b = task / shape.heads
            let h = task % shape.heads
            let g = h / shape.groupSize
            let qb = q + b * t * shape.qWidth + h * d
            let kb = k + b * t * shape.kvWidth + g * d
            let vb = v + b * t * shape.kvWidth + g * d
            let ob = out + b * t * shape.qWidth + h * d
            let p = probs + task * t * t
            for i0 in stride(from: 0, to: t, by: block) {
                let i1 = min(t, i0 + block)
                gemm(
                    .none, .transposed, m: i1 - i0, n: i1, k: d, alpha: scale, a: qb + i0 * shape.qWidth,
                    lda: shape.qWidth, b: kb, ldb: shape.kvWidth, c: p + i0 * t, ldc: t)
                for i in i0..<i1 { causalSoftmaxRow(p + i * t, valid: i + 1, width: i1) }
                gemm(
                    .none, .none, m: i1 - i0, n: d, k: i1, a: p + i0 * t, lda: t, b: vb, ldb: shape.kvWidth,
                    c: ob + i0 * shape.qWidth, ldc: shape.qWidth)
            }
        }
    }

    /// Floats of scratch `backward` needs.
    static func scratchCount(_ shape: AttentionShape) -> Int {
        shape.batch * shape.kvHeads * block * shape.seqLen
    }

    /// Backward: writes dq, and dk, dv (each overwritten), given dout and the saved probs;
    /// `scratch` holds `scratchCount(shape)` floats.
    static func backward(
        dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
        v: UnsafePointer<Float>, probs: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
        dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        shape: AttentionShape
    ) {
        let t = shape.seqLen
        let d = shape.headDim
        let scale = 1 / Float(d).squareRoot()
        // One task per (sequence, key/value head): it owns that group's dk and dv rows.
        parallelFor(shape.batch * shape.kvHeads) { task in
            let b = task / shape.kvHeads
            let g = task % shape.kvHeads
            let kb = k + b * t * shape.kvWidth + g * d
            let vb = v + b * t * shape.kvWidth + g * d
            let dkb = dk + b * t * shape.kvWidth + g * d
            let dvb = dv + b * t * shape.kvWidth + g * d
            let ds = scratch + task * block * t
            for i in 0..<t {
                (dkb + i * shape.kvWidth).update(repeating: 0, count: d)
                (dvb + i * shape.kvWidth).update(repeating: 0, count: d)
            }
            for h in g * shape.groupSize..<(g + 1) * shape.groupSize {
                let p = probs + (b * shape.heads + h) * t * t
                let dob = dout + b * t * shape.qWidth + h * d
                let qb = q + b * t * shape.qWidth + h * d
                let dqb = dq + b * t * shape.qWidth + h * d
                for i0 in stride(from: 0, to: t, by: block) {
                    let i1 = min(t, i0 + block)
                    let rows = i1 - i0
                    let pBlock = p + i0 * t
                    // dv[0..<i1] += pᵀ·dout ; ds = dout·vᵀ
                    gemm(
                        .transposed, .none, m: i1, n: d, k: rows, a: pBlock, lda: t, b: dob + i0 * shape.qWidth,
                        ldb: shape.qWidth, beta: 1, c: dvb, ldc: shape.kvWidth)
                    gemm(
                        .none, .transposed, m: rows, n: i1, k: d, a: dob + i0 * shape.qWidth, lda: shape.qWidth,
                        b: vb, ldb: shape.kvWidth, c: ds, ldc: t)
                    for i in i0..<i1 {
                        softmaxBackwardRow(
                            pBlock + (i - i0) * t, ds + (i - i0) * t, valid: i + 1, width: i1, scale: scale)
                    }
                    // dq = ds·k ; dk[0..<i1] += dsᵀ·q
                    gemm(
                        .none, .none, m: rows, n: d, k: i1, a: ds, lda: t, b: kb, ldb: shape.kvWidth,
                        c: dqb + i0 * shape.qWidth, ldc: shape.qWidth)
                    gemm(
                        .transposed, .none, m: i1, n: d, k: rows, a: ds, lda: t, b: qb + i0 * shape.qWidth,
                        ldb: shape.qWidth, beta: 1, c: dkb, ldc: shape.kvWidth)
                }
            }
        }
    }

    /// Softmax over the first `valid` entries of a row; the rest of the row is zeroed.
    @inline(__always)
    static func causalSoftmaxRow(_ row: UnsafeMutablePointer<Float>, valid: Int, width: Int) {
        var m = -Float.infinity
        for j in 0..<valid { m = max(m, row[j]) }
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= valid {
            let e = exp8(row.load8(j) - m)
            row.store8(j, e)
            acc += e
            j += 8
        }
        var sum = hsum(acc)
        while j < valid {
            let e = expf(row[j] - m)
            row[j] = e
            sum += e
            j += 1
        }
        let inv = 1 / sum
        j = 0
        while j + 8 <= valid {
            row.store8(j, row.load8(j) * inv)
            j += 8
        }
        while j < valid {
            row[j] *= inv
            j += 1
        }
        if valid < width { (row + valid).update(repeating: 0, count: width - valid) }
    }

    /// ds = p ⊙ (dp − Σ p·dp) · scale over the first `valid` entries; zero beyond them.
    @inline(__always)
    static func softmaxBackwardRow(
        _ p: UnsafePointer<Float>, _ ds: UnsafeMutablePointer<Float>, valid: Int, width: Int,
        scale: Float
    ) {
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= valid {
            acc.addProduct(p.load8(j), ds.load8(j))
            j += 8
        }
        var dot = hsum(acc)
        while j < valid {
            dot += p[j] * ds[j]
            j += 1
        }
        j = 0
        while j + 8 <= valid {
            ds.store8(j, p.load8(j) * (ds.load8(j) - dot) * scale)
            j += 8
        }
        while j < valid {
            ds[j] = p[j] * (ds[j] - dot) * scale
            j += 1
        }
        if valid < width { (ds + valid).update(repeating: 0, count: width - valid) }
    }
}
