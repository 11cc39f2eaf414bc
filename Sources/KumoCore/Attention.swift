import Foundation

/// Shape of a causal grouped-query attention call: `batch` sequences of `seqLen` tokens,
/// `heads` query heads sharing `kvHeads` key/value heads (heads % kvHeads == 0).
public struct AttentionShape: Sendable {
    public var batch: Int
    public var seqLen: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int

    /// Creates a shape.
    public init(batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int) {
        precondition(heads % kvHeads == 0, "query heads must be a multiple of key/value heads")
        self.batch = batch
        self.seqLen = seqLen
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
    }

    var qWidth: Int { heads * headDim }
    var kvWidth: Int { kvHeads * headDim }
    var groupSize: Int { heads / kvHeads }
    /// Floats of the per-row logsumexp that forward saves for backward ([B, H, T]).
    public var logsumexpCount: Int { batch * heads * seqLen }
}

/// Causal softmax attention, out = softmax(q·kᵀ/√d + mask)·v, per head, flash-style: each tile
/// of `queryTile` query rows meets its keys in tiles of at most `keyTile` with an online
/// softmax, so no T×T matrix is ever stored; forward saves each row's logsumexp and backward
/// recomputes the probabilities tile by tile (FlashAttention-2). Rows are tokens (batch-major);
/// q is [B·T, H·d], k and v are [B·T, Hkv·d].
public enum AttentionKernel {
    /// Query rows per tile.
    public static let queryTile = 64
    /// Keys per tile (a multiple of `queryTile`, so every key tile a query tile meets starts at or
    /// before the tile's first row and each row has at least one key in it).
    public static let keyTile = 256

    /// Forward: writes out and the logsumexp of each row's scaled scores into `lse` ([B, H, T]).
    /// Parallel over (sequence, head, query tile), costliest tiles first.
    public static func forward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, shape: AttentionShape
    ) {
        let tiles = (shape.seqLen + queryTile - 1) / queryTile
        let heads = shape.batch * shape.heads
        parallelForEachDynamic(heads * tiles) { task in
            let tile = tiles - 1 - task / heads
            let (b, h) = (task % heads / shape.heads, task % shape.heads)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: queryTile * (keyTile + 2)) { buffer in
                forwardTile(
                    HeadView(q: q, k: k, v: v, out: out, lse: lse, b: b, h: h, shape: shape), i0: tile * queryTile,
                    scores: buffer.baseAddress!)
            }
        }
    }

    /// Backward: writes dq, dk and dv (each overwritten) given dout and forward's q, k, v, out and lse.
    /// Parallel over (sequence, key/value head): each task owns its group's dk and dv rows.
    public static func backward(
        dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
        dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, shape: AttentionShape
    ) {
        let t = shape.seqLen
        let d = shape.headDim
        parallelFor(shape.batch * shape.kvHeads) { task in
            let (b, g) = (task / shape.kvHeads, task % shape.kvHeads)
            let kv = b * t * shape.kvWidth + g * d
            for i in 0..<t {
                (dk + kv + i * shape.kvWidth).update(repeating: 0, count: d)
                (dv + kv + i * shape.kvWidth).update(repeating: 0, count: d)
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: queryTile * (2 * keyTile + 1)) { buffer in
                let work = buffer.baseAddress!
                for h in g * shape.groupSize..<(g + 1) * shape.groupSize {
                    // out and lse are only read here.
                    let head = HeadView(
                        q: q, k: k, v: v, out: UnsafeMutablePointer(mutating: out),
                        lse: UnsafeMutablePointer(mutating: lse), b: b, h: h, shape: shape)
                    let rows = b * t * shape.qWidth + h * d
                    let grads = HeadGradients(dout: dout + rows, dq: dq + rows, dk: dk + kv, dv: dv + kv)
                    for i0 in stride(from: 0, to: t, by: queryTile) {
                        backwardTile(head, grads, i0: i0, work: work)
                    }
                }
            }
        }
    }

    /// One query head of one sequence: its q, out and lse and its group's k and v, with strides.
    struct HeadView {
        let q, k, v: UnsafePointer<Float>
        let o, lse: UnsafeMutablePointer<Float>
        let qWidth, kvWidth, seqLen, headDim: Int
        let scale: Float

        init(
            q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
            out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, b: Int, h: Int,
            shape: AttentionShape
        ) {
            let (t, d) = (shape.seqLen, shape.headDim)
            let g = h / shape.groupSize
            self.q = q + b * t * shape.qWidth + h * d
            self.k = k + b * t * shape.kvWidth + g * d
            self.v = v + b * t * shape.kvWidth + g * d
            o = out + b * t * shape.qWidth + h * d
            self.lse = lse + (b * shape.heads + h) * t
            (qWidth, kvWidth, seqLen, headDim) = (shape.qWidth, shape.kvWidth, t, d)
            scale = 1 / Float(d).squareRoot()
        }

        /// scores[rows × w] = scale · q[i0..<i0+rows] · k[j0..<j0+w]ᵀ.
        func scores(i0: Int, rows: Int, j0: Int, w: Int, into s: UnsafeMutablePointer<Float>) {
            gemm(
                .none, .transposed, m: rows, n: w, k: headDim, alpha: scale, a: q + i0 * qWidth, lda: qWidth,
                b: k + j0 * kvWidth, ldb: kvWidth, c: s, ldc: w)
        }
    }

    /// The gradient pointers matching a `HeadView` (dout and dq at the head's columns, dk and dv at its group's).
    struct HeadGradients {
        let dout: UnsafePointer<Float>
        let dq, dk, dv: UnsafeMutablePointer<Float>
    }

    /// Out and lse of query rows i0..<i0+queryTile: online softmax over key tiles up to the last row.
    /// `scores` holds queryTile·(keyTile + 2) floats.
    static func forwardTile(_ head: HeadView, i0: Int, scores s: UnsafeMutablePointer<Float>) {
        let i1 = min(head.seqLen, i0 + queryTile)
        let rows = i1 - i0
        let (rowMax, rowSum) = (s + queryTile * keyTile, s + queryTile * (keyTile + 1))
        rowMax.update(repeating: -.infinity, count: rows)
        rowSum.update(repeating: 0, count: rows)
        let o = head.o + i0 * head.qWidth
        for j0 in stride(from: 0, to: i1, by: keyTile) {
            let w = min(i1, j0 + keyTile) - j0
            head.scores(i0: i0, rows: rows, j0: j0, w: w, into: s)
            for r in 0..<rows {
                let row = s + r * w
                let valid = min(w, i0 + r + 1 - j0)
                let m = max(rowMax[r], maximum(row, valid))
                let sum = exponentiate(row, valid: valid, width: w, minus: m)
                let rescale = expf(rowMax[r] - m)
                rowSum[r] = rowSum[r] * rescale + sum
                rowMax[r] = m
                if j0 > 0 { scale(o + r * head.qWidth, by: rescale, count: head.headDim) }
            }
            gemm(
                .none, .none, m: rows, n: head.headDim, k: w, a: s, lda: w, b: head.v + j0 * head.kvWidth,
                ldb: head.kvWidth, beta: j0 == 0 ? 0 : 1, c: o, ldc: head.qWidth)
        }
        for r in 0..<rows {
            scale(o + r * head.qWidth, by: 1 / rowSum[r], count: head.headDim)
            head.lse[i0 + r] = rowMax[r] + logf(rowSum[r])
        }
    }

    /// Adds query rows i0..<i0+queryTile's share to dk and dv and writes their dq, recomputing the
    /// probabilities from lse. `work` holds queryTile·(2·keyTile + 1) floats.
    static func backwardTile(_ head: HeadView, _ grad: HeadGradients, i0: Int, work: UnsafeMutablePointer<Float>) {
        let i1 = min(head.seqLen, i0 + queryTile)
        let rows = i1 - i0
        let (p, ds, delta) = (work, work + queryTile * keyTile, work + 2 * queryTile * keyTile)
        let (qw, kvw, d) = (head.qWidth, head.kvWidth, head.headDim)
        let (qi, doi, dqi) = (head.q + i0 * qw, grad.dout + i0 * qw, grad.dq + i0 * qw)
        // δ = rowsum(dout ⊙ out) = Σ p·dp, the softmax backward's per-row constant.
        for r in 0..<rows { delta[r] = dotProduct(doi + r * qw, head.o + (i0 + r) * qw, count: d) }
        for j0 in stride(from: 0, to: i1, by: keyTile) {
            let w = min(i1, j0 + keyTile) - j0
            let (kj, vj) = (head.k + j0 * kvw, head.v + j0 * kvw)
            head.scores(i0: i0, rows: rows, j0: j0, w: w, into: p)
            for r in 0..<rows {
                _ = exponentiate(p + r * w, valid: min(w, i0 + r + 1 - j0), width: w, minus: head.lse[i0 + r])
            }
            // dv_j += pᵀ·dout_i ; dp = dout_i·v_jᵀ ; ds = p ⊙ (dp − δ) · scale
            gemm(
                .transposed, .none, m: w, n: d, k: rows, a: p, lda: w, b: doi, ldb: qw, beta: 1, c: grad.dv + j0 * kvw,
                ldc: kvw)
            gemm(.none, .transposed, m: rows, n: w, k: d, a: doi, lda: qw, b: vj, ldb: kvw, c: ds, ldc: w)
            for r in 0..<rows {
                softmaxBackwardRow(p + r * w, ds + r * w, count: w, delta: delta[r], scale: head.scale)
            }
            // dq_i (+)= ds·k_j ; dk_j += dsᵀ·q_i
            gemm(
                .none, .none, m: rows, n: d, k: w, a: ds, lda: w, b: kj, ldb: kvw, beta: j0 == 0 ? 0 : 1, c: dqi,
                ldc: qw)
            gemm(
                .transposed, .none, m: w, n: d, k: rows, a: ds, lda: w, b: qi, ldb: qw, beta: 1, c: grad.dk + j0 * kvw,
                ldc: kvw)
        }
    }

    /// The largest of the first `count` entries.
    @inline(__always)
    static func maximum(_ row: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= count {
            acc = pointwiseMax(acc, row.load8(j))
            j += 8
        }
        var m = acc.max()
        while j < count {
            m = max(m, row[j])
            j += 1
        }
        return m
    }

    /// row[j] = exp(row[j] − shift) for j < valid and 0 for valid ≤ j < width; returns the sum.
    @inline(__always)
    static func exponentiate(
        _ row: UnsafeMutablePointer<Float>, valid: Int, width: Int, minus shift: Float
    ) -> Float {
        let shift8 = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= valid {
            let e = exp8(row.load8(j) - shift8)
            row.store8(j, e)
            acc += e
            j += 8
        }
        var sum = hsum(acc)
        while j < valid {
            let e = expf(row[j] - shift)
            row[j] = e
            sum += e
            j += 1
        }
        if valid < width { (row + valid).update(repeating: 0, count: width - valid) }
        return sum
    }

    /// ds = p ⊙ (ds − delta) · scale over `count` entries (zeros of p give zeros of ds).
    @inline(__always)
    static func softmaxBackwardRow(
        _ p: UnsafePointer<Float>, _ ds: UnsafeMutablePointer<Float>, count: Int, delta: Float, scale: Float
    ) {
        let (delta8, scale8) = (SIMD8<Float>(repeating: delta), SIMD8<Float>(repeating: scale))
        var j = 0
        while j + 8 <= count {
            ds.store8(j, p.load8(j) * (ds.load8(j) - delta8) * scale8)
            j += 8
        }
        while j < count {
            ds[j] = p[j] * (ds[j] - delta) * scale
            j += 1
        }
    }

    /// x[0..<count] *= factor.
    @inline(__always)
    static func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        let f = SIMD8<Float>(repeating: factor)
        var j = 0
        while j + 8 <= count {
            x.store8(j, x.load8(j) * f)
            j += 8
        }
        while j < count {
            x[j] *= factor
            j += 1
        }
    }
}
