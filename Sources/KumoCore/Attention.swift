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
/// q is [B·T, H·d], k and v are [B·T, Hkv·d]. With `positions` ([B·T], each token's position in
/// its document) the token at offset t of a sequence attends to offsets t − positions[t] … t
/// only, so packed documents never attend to each other; without, to offsets 0 … t.
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
        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, shape: AttentionShape,
        positions: UnsafePointer<Int32>? = nil
    ) {
        if let positions { checkPositions(positions, shape) }
        let tiles = (shape.seqLen + queryTile - 1) / queryTile
        let heads = shape.batch * shape.heads
        parallelForEachDynamic(heads * tiles) { task in
            let tile = tiles - 1 - task / heads
            let (b, h) = (task % heads / shape.heads, task % shape.heads)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: queryTile * (keyTile + 2)) { buffer in
                forwardTile(
                    HeadView(q: q, k: k, v: v, out: out, lse: lse, positions: positions, b: b, h: h, shape: shape),
                    i0: tile * queryTile,
                    scores: buffer.baseAddress!)
            }
        }
    }

    /// Backward: writes dq, dk and dv (each overwritten) given dout and forward's q, k, v, out and lse.
    /// Parallel over (sequence, key/value head): each task owns its group's dk and dv rows.
    public static func backward(
        dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
        dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, shape: AttentionShape,
        positions: UnsafePointer<Int32>? = nil
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
                        lse: UnsafeMutablePointer(mutating: lse), positions: positions, b: b, h: h, shape: shape)
                    let rows = b * t * shape.qWidth + h * d
                    let grads = HeadGradients(dout: dout + rows, dq: dq + rows, dk: dk + kv, dv: dv + kv)
                    for i0 in stride(from: 0, to: t, by: queryTile) {
                        backwardTile(head, grads, i0: i0, work: work)
                    }
                }
            }
        }
    }

    /// Each position must lie within its sequence: 0 ≤ positions[t] ≤ t.
    static func checkPositions(_ positions: UnsafePointer<Int32>, _ shape: AttentionShape) {
        for i in 0..<shape.batch * shape.seqLen {
            precondition(
                positions[i] >= 0 && Int(positions[i]) <= i % shape.seqLen, "position \(positions[i]) at offset \(i)")
        }
    }

    /// One query head of one sequence: its q, out and lse, its group's k and v, with strides, and
    /// its tokens' positions.
    struct HeadView {
        let q, k, v: UnsafePointer<Float>
        let o, lse: UnsafeMutablePointer<Float>
        /// The sequence's positions (nil: token t is at position t).
        let positions: UnsafePointer<Int32>?
        let qWidth, kvWidth, seqLen, headDim: Int
        let scale: Float

        init(
            q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
            out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>?,
            b: Int, h: Int, shape: AttentionShape
        ) {
            let (t, d) = (shape.seqLen, shape.headDim)
            let g = h / shape.groupSize
            self.q = q + b * t * shape.qWidth + h * d
            self.k = k + b * t * shape.kvWidth + g * d
            self.v = v + b * t * shape.kvWidth + g * d
            o = out + b * t * shape.qWidth + h * d
            self.lse = lse + (b * shape.heads + h) * t
            self.positions = positions.map { $0 + b * t }
            (qWidth, kvWidth, seqLen, headDim) = (shape.qWidth, shape.kvWidth, t, d)
            scale = 1 / Float(d).squareRoot()
        }

        /// scores[rows × w] = scale · q[i0..<i0+rows] · k[j0..<j0+w]ᵀ.
        func scores(i0: Int, rows: Int, j0: Int, w: Int, into s: UnsafeMutablePointer<Float>) {
            gemm(
                .none, .transposed, m: rows, n: w, k: headDim, alpha: scale, a: q + i0 * qWidth, lda: qWidth,
                b: k + j0 * kvWidth, ldb: kvWidth, c: s, ldc: w)
        }

        /// The first key query row i attends to.
        @inline(__always)
        func firstKey(_ i: Int) -> Int { positions.map { i - Int($0[i]) } ?? 0 }

        /// The first key any of query rows i0..<i1 attends to.
        func firstKey(rows i0: Int, _ i1: Int) -> Int {
            guard positions != nil else { return 0 }
            var first = i0
            for i in i0..<i1 { first = min(first, firstKey(i)) }
            return first
        }

        /// Columns first..<end of the `w` keys from j0 that query row i attends to (first == end: none).
        @inline(__always)
        func keyColumns(row i: Int, j0: Int, w: Int) -> (first: Int, end: Int) {
            let end = min(w, i + 1 - j0)
            return (min(max(0, firstKey(i) - j0), end), end)
        }
    }

    /// The gradient pointers matching a `HeadView` (dout and dq at the head's columns, dk and dv at its group's).
    struct HeadGradients {
        let dout: UnsafePointer<Float>
        let dq, dk, dv: UnsafeMutablePointer<Float>
    }

    /// Out and lse of query rows i0..<i0+queryTile: online softmax over the key tiles from the
    /// rows' first key to the last row. `scores` holds queryTile·(keyTile + 2) floats.
    static func forwardTile(_ head: HeadView, i0: Int, scores s: UnsafeMutablePointer<Float>) {
        let i1 = min(head.seqLen, i0 + queryTile)
        let rows = i1 - i0
        let (rowMax, rowSum) = (s + queryTile * keyTile, s + queryTile * (keyTile + 1))
        rowMax.update(repeating: -.infinity, count: rows)
        rowSum.update(repeating: 0, count: rows)
        let o = head.o + i0 * head.qWidth
        let first = head.firstKey(rows: i0, i1)
        forEachKeyTile(from: first, to: i1) { j0, w in
            head.scores(i0: i0, rows: rows, j0: j0, w: w, into: s)
            for r in 0..<rows {
                let row = s + r * w
                let keys = head.keyColumns(row: i0 + r, j0: j0, w: w)
                let m = max(rowMax[r], maximum(row + keys.first, keys.end - keys.first))
                let sum = exponentiate(row, from: keys.first, to: keys.end, width: w, minus: m)
                // A row with no key yet keeps m = −∞, where exp(m_old − m) would be NaN.
                let rescale = m == -.infinity ? 0 : expf(rowMax[r] - m)
                rowSum[r] = rowSum[r] * rescale + sum
                rowMax[r] = m
                if j0 > first { scale(o + r * head.qWidth, by: rescale, count: head.headDim) }
            }
            gemm(
                .none, .none, m: rows, n: head.headDim, k: w, a: s, lda: w, b: head.v + j0 * head.kvWidth,
                ldb: head.kvWidth, beta: j0 == first ? 0 : 1, c: o, ldc: head.qWidth)
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
        let first = head.firstKey(rows: i0, i1)
        forEachKeyTile(from: first, to: i1) { j0, w in
            let (kj, vj) = (head.k + j0 * kvw, head.v + j0 * kvw)
            head.scores(i0: i0, rows: rows, j0: j0, w: w, into: p)
            for r in 0..<rows {
                let keys = head.keyColumns(row: i0 + r, j0: j0, w: w)
                _ = exponentiate(p + r * w, from: keys.first, to: keys.end, width: w, minus: head.lse[i0 + r])
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
                .none, .none, m: rows, n: d, k: w, a: ds, lda: w, b: kj, ldb: kvw, beta: j0 == first ? 0 : 1, c: dqi,
                ldc: qw)
            gemm(
                .transposed, .none, m: w, n: d, k: rows, a: ds, lda: w, b: qi, ldb: qw, beta: 1, c: grad.dk + j0 * kvw,
                ldc: kvw)
        }
    }
}
