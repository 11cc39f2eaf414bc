import KumoCore
import XCTest

@testable import KumoModel

/// q, k, v of a causal attention call, a fixed random R, and the analytic gradients of
/// L = Σ AttentionKernel(q, k, v) ⊙ R (dout = R).
final class AttentionFixture {
    let shape: AttentionShape
    let q, k, v, r, out, lse, dq, dk, dv: FloatBuffer

    init(heads: Int, kvHeads: Int, batch: Int = 2, seq: Int, headDim: Int = 8, seed: UInt64 = 14) {
        shape = AttentionShape(batch: batch, seqLen: seq, heads: heads, kvHeads: kvHeads, headDim: headDim)
        let rows = batch * seq
        q = randomBuffer(rows * heads * headDim, seed: seed)
        k = randomBuffer(rows * kvHeads * headDim, seed: seed + 1)
        v = randomBuffer(rows * kvHeads * headDim, seed: seed + 2)
        r = randomBuffer(q.count, seed: seed + 3)
        out = FloatBuffer(count: q.count)
        lse = FloatBuffer(count: shape.logsumexpCount)
        dq = FloatBuffer(count: q.count)
        dk = FloatBuffer(count: k.count)
        dv = FloatBuffer(count: v.count)
        _ = loss()
        AttentionKernel.backward(
            dout: r.pointer, q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer,
            dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, shape: shape)
    }

    func loss() -> Double {
        AttentionKernel.forward(
            q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer, shape: shape)
        return dot(out.pointer, r.pointer, out.count)
    }

    /// Flat index of column `col` of token `i` of sequence `b` in q (or dq).
    func qIndex(_ b: Int, _ i: Int, _ col: Int) -> Int { (b * shape.seqLen + i) * shape.heads * shape.headDim + col }
    /// Flat index of column `col` of token `i` of sequence `b` in k or v.
    func kvIndex(_ b: Int, _ i: Int, _ col: Int) -> Int {
        (b * shape.seqLen + i) * shape.kvHeads * shape.headDim + col
    }
}

/// Finite-difference checks of the layer kernels: L = Σ out ⊙ R for a fixed random R, with the
/// analytic backward run on dout = R.
final class KernelGradientTests: XCTestCase {
    private let gc = GradientCheck()

    override func setUp() { Threads.set(1) }

    func testEmbeddingTableGradientMatchesFiniteDifferences() {
        let (vocab, dim, rows) = (11, 12, 9)
        let table = randomBuffer(vocab * dim, seed: 1)
        let ids: [Int32] = [3, 0, 3, 10, 5, 3, 7, 0, 2]  // repeated ids must add up
        let r = randomBuffer(rows * dim, seed: 2)
        let out = FloatBuffer(count: rows * dim)
        let loss = { () -> Double in
            Embedding.forward(ids: ids, table: table.pointer, out: out.pointer, rows: rows, dim: dim, vocab: vocab)
            return dot(out.pointer, r.pointer, rows * dim)
        }
        let grad = FloatBuffer(count: vocab * dim)
        Embedding.backward(ids: ids, dout: r.pointer, dtable: grad.pointer, rows: rows, dim: dim)
        // Coordinates of a thrice-used row (3) and an unused row (1) on top of the sample.
        gc.check(
            "embedding table", x: table.pointer, count: table.count, analytic: grad.array,
            extra: [3 * dim, 3 * dim + 11, 1 * dim + 4], loss: loss)
        // Rows of ids that never occur get exactly zero gradient.
        for id in [1, 4, 6, 8, 9] {
            XCTAssertEqual(values(grad.pointer + id * dim, dim), [Float](repeating: 0, count: dim), "row \(id)")
        }
    }

    func testVocabularySlicedEmbeddingGivesZeroRowsAndGradientsOnlyForItsIds() {
        let (vocab, dim, rows) = (11, 6, 9)
        let held = 3..<7
        let table = randomBuffer(held.count * dim, seed: 3)
        let ids: [Int32] = [3, 0, 3, 10, 5, 3, 7, 0, 6]
        let r = randomBuffer(rows * dim, seed: 4)
        let out = FloatBuffer(count: rows * dim)
        let loss = { () -> Double in
            Embedding.forward(
                ids: ids, table: table.pointer, out: out.pointer, rows: rows, dim: dim, vocab: vocab, held: held)
            return dot(out.pointer, r.pointer, rows * dim)
        }
        _ = loss()
        for (row, id) in ids.enumerated() where !held.contains(Int(id)) {
            XCTAssertEqual(values(out.pointer + row * dim, dim), [Float](repeating: 0, count: dim), "row \(row)")
        }
        XCTAssertEqual(values(out.pointer + 4 * dim, dim), values(table.pointer + 2 * dim, dim), "id 5 is local row 2")
        let grad = FloatBuffer(count: held.count * dim)
        Embedding.backward(ids: ids, dout: r.pointer, dtable: grad.pointer, rows: rows, dim: dim, held: held)
        gc.check("sliced embedding table", x: table.pointer, count: table.count, analytic: grad.array, loss: loss)
    }

    func testLinearInputAndWeightGradientsMatchFiniteDifferences() {
        let (rows, inF, outF) = (5, 12, 7)
        let x = randomBuffer(rows * inF, seed: 3)
        let w = randomBuffer(outF * inF, seed: 4)
        let r = randomBuffer(rows * outF, seed: 5)
        let y = FloatBuffer(count: rows * outF)
        let loss = { () -> Double in
            Linear.forward(
                x: x.pointer, weight: w.pointer, y: y.pointer, rows: rows, inFeatures: inF, outFeatures: outF)
            return dot(y.pointer, r.pointer, y.count)
        }
        let dx = FloatBuffer(count: x.count)
        let dw = FloatBuffer(count: w.count)
        Linear.backward(
            dy: r.pointer, x: x.pointer, weight: w.pointer, dx: dx.pointer, dweight: dw.pointer, rows: rows,
            inFeatures: inF, outFeatures: outF)
        gc.check("linear x", x: x.pointer, count: x.count, analytic: dx.array, loss: loss)
        gc.check("linear weight", x: w.pointer, count: w.count, analytic: dw.array, loss: loss)
    }

    func testRMSNormInputAndWeightGradientsMatchFiniteDifferences() {
        // 19 is not a multiple of 8 (scalar tails); 32 is all SIMD.
        for dim in [19, 32] {
            let rows = 4
            let x = randomBuffer(rows * dim, seed: 6)
            let w = randomBuffer(dim, seed: 7, scale: 0.3)
            for i in 0..<dim { w[i] += 1 }
            let r = randomBuffer(rows * dim, seed: 8)
            let y = FloatBuffer(count: rows * dim)
            let rstd = FloatBuffer(count: rows)
            let loss = { () -> Double in
                RMSNormKernel.forward(
                    x: x.pointer, weight: w.pointer, y: y.pointer, rstd: rstd.pointer, rows: rows, dim: dim, eps: 1e-5)
                return dot(y.pointer, r.pointer, y.count)
            }
            _ = loss()
            let dx = FloatBuffer(count: x.count)
            let dw = FloatBuffer(count: dim)
            RMSNormKernel.backward(
                dy: r.pointer, x: x.pointer, weight: w.pointer, rstd: rstd.pointer, dx: dx.pointer, dweight: dw.pointer,
                rows: rows, dim: dim, accumulate: false)
            gc.check("rmsnorm[\(dim)] x", x: x.pointer, count: x.count, analytic: dx.array, loss: loss)
            gc.check("rmsnorm[\(dim)] weight", x: w.pointer, count: dim, analytic: dw.array, loss: loss)

            // accumulate: true adds ∂L/∂x to dx; dweight always accumulates.
            _ = loss()  // rstd of the unperturbed x again
            let dx2 = randomBuffer(x.count, seed: 99)
            let before = dx2.array
            let once = dw.array
            RMSNormKernel.backward(
                dy: r.pointer, x: x.pointer, weight: w.pointer, rstd: rstd.pointer, dx: dx2.pointer,
                dweight: dw.pointer, rows: rows, dim: dim, accumulate: true)
            for i in 0..<x.count { XCTAssertEqual(dx2[i], before[i] + dx[i], accuracy: 1e-5, "accumulated dx[\(i)]") }
            for i in 0..<dim { XCTAssertEqual(dw[i], 2 * once[i], accuracy: 1e-5 * abs(once[i]), "dweight[\(i)]") }
        }
    }

    func testRoPEInverseRotationGradientMatchesFiniteDifferences() {
        let (rows, seq, heads, hd) = (6, 3, 2, 20)  // half = 10: one SIMD group plus a tail
        let table = RoPETable(headDim: hd, maxPositions: 8, theta: 10000)
        let x = randomBuffer(rows * heads * hd, seed: 9)
        let r = randomBuffer(x.count, seed: 10)
        let y = FloatBuffer(count: x.count)
        let loss = { () -> Double in
            y.pointer.update(from: x.pointer, count: x.count)
            table.apply(y.pointer, rows: rows, seqLen: seq, heads: heads)
            return dot(y.pointer, r.pointer, y.count)
        }
        let dx = FloatBuffer(r.array)
        table.apply(dx.pointer, rows: rows, seqLen: seq, heads: heads, inverse: true)
        gc.check("rope x", x: x.pointer, count: x.count, analytic: dx.array, loss: loss)
    }

    func testRoPEInverseIsTheTransposeOfTheRotation() {
        // ⟨R, rope(x)⟩ = ⟨rope⁻¹(R), x⟩ for any x, R, and rope⁻¹(rope(x)) = x.
        let (rows, seq, heads, hd) = (10, 5, 3, 20)
        let table = RoPETable(headDim: hd, maxPositions: 8, theta: 10000)
        let x = randomBuffer(rows * heads * hd, seed: 40)
        let r = randomBuffer(x.count, seed: 41)
        let y = FloatBuffer(x.array)
        table.apply(y.pointer, rows: rows, seqLen: seq, heads: heads)
        let rt = FloatBuffer(r.array)
        table.apply(rt.pointer, rows: rows, seqLen: seq, heads: heads, inverse: true)
        let lhs = dot(r.pointer, y.pointer, x.count)
        let rhs = dot(rt.pointer, x.pointer, x.count)
        XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * (abs(lhs) + 1), "⟨R, rope x⟩ vs ⟨rope⁻¹ R, x⟩")
        table.apply(y.pointer, rows: rows, seqLen: seq, heads: heads, inverse: true)
        for i in 0..<x.count { XCTAssertEqual(y[i], x[i], accuracy: 1e-5, "rope⁻¹(rope x)[\(i)]") }
        // The rotation is not symmetric: using it as its own backward would be wrong.
        let wrong = FloatBuffer(r.array)
        table.apply(wrong.pointer, rows: rows, seqLen: seq, heads: heads)
        XCTAssertGreaterThan(abs(dot(wrong.pointer, x.pointer, x.count) - lhs), 1e-2 * abs(lhs))
    }

    func testSwiGLUKernelGradientsMatchFiniteDifferences() {
        let count = 37  // four SIMD groups plus a tail
        let gate = randomBuffer(count, seed: 11, scale: 2)
        gate[0] = 12  // saturated regions
        gate[1] = -12
        let up = randomBuffer(count, seed: 12)
        let r = randomBuffer(count, seed: 13)
        let out = FloatBuffer(count: count)
        let loss = { () -> Double in
            SwiGLUKernel.forward(gate: gate.pointer, up: up.pointer, out: out.pointer, count: count)
            return dot(out.pointer, r.pointer, count)
        }
        let dg = FloatBuffer(count: count)
        let du = FloatBuffer(count: count)
        SwiGLUKernel.backward(
            ds: r.pointer, gate: gate.pointer, up: up.pointer, dgate: dg.pointer, dup: du.pointer, count: count)
        gc.check("swiglu gate", x: gate.pointer, count: count, analytic: dg.array, extra: [0, 1], loss: loss)
        gc.check("swiglu up", x: up.pointer, count: count, analytic: du.array, extra: [0, 1], loss: loss)
        // In place (dgate written over ds), as SwiGLUMLP calls it.
        let inPlace = FloatBuffer(r.array)
        SwiGLUKernel.backward(
            ds: inPlace.pointer, gate: gate.pointer, up: up.pointer, dgate: inPlace.pointer, dup: du.pointer,
            count: count)
        XCTAssertEqual(inPlace.array, dg.array)
    }

    /// seq 70 spans two query tiles of 64 rows, so the tile-wise causal path (and dk, dv
    /// accumulating over tiles) is covered; extra coordinates sit in the second tile. A longer
    /// `seq` also spans several key tiles (online softmax rescaling, dq accumulating over them).
    private func checkAttention(heads: Int, kvHeads: Int, seq: Int = 70) {
        let f = AttentionFixture(heads: heads, kvHeads: kvHeads, seq: seq)
        let kvw = kvHeads * 8
        let name = "attention \(heads)/\(kvHeads) T\(seq)"
        let last = seq - 1
        gc.check(
            name + " q", x: f.q.pointer, count: f.q.count, analytic: f.dq.array,
            extra: [f.qIndex(1, 66, 5), f.qIndex(0, last, heads * 8 - 1), f.qIndex(1, 64, 9), f.qIndex(0, 0, 3)],
            loss: f.loss)
        // Key/value rows early in the sequence get gradient from every query tile, late ones from one.
        let kvExtra = [
            f.kvIndex(0, 3, 1), f.kvIndex(1, last - 2, kvw - 1), f.kvIndex(1, last, 0), f.kvIndex(0, 63, kvw / 2),
        ]
        gc.check(name + " k", x: f.k.pointer, count: f.k.count, analytic: f.dk.array, extra: kvExtra, loss: f.loss)
        gc.check(name + " v", x: f.v.pointer, count: f.v.count, analytic: f.dv.array, extra: kvExtra, loss: f.loss)
    }

    func testAttentionMHAGradientsMatchFiniteDifferences() { checkAttention(heads: 4, kvHeads: 4) }
    func testAttentionGQAGradientsMatchFiniteDifferences() { checkAttention(heads: 4, kvHeads: 2) }
    func testAttentionMQAGradientsMatchFiniteDifferences() { checkAttention(heads: 4, kvHeads: 1) }
    func testAttentionGQAGradientsOverSeveralKeyTilesMatchFiniteDifferences() {
        checkAttention(heads: 4, kvHeads: 2, seq: 2 * AttentionKernel.keyTile + 9)
    }

    func testCrossEntropyLogitGradientsMatchFiniteDifferencesAndIgnoredRowsGetNothing() {
        let (rows, vocab) = (6, 21)  // two SIMD groups plus a tail
        let logits = randomBuffer(rows * vocab, seed: 18, scale: 2)
        let targets: [Int32] = [3, -100, 20, 0, -100, 7]
        let scored = 4
        let gradScale = 1 / Float(scored)
        let work = FloatBuffer(count: logits.count)
        work.pointer.update(from: logits.pointer, count: logits.count)
        let (sum, count) = CrossEntropyKernel.forwardBackward(
            logits: work.pointer, targets: targets, rows: rows, vocab: vocab, gradScale: gradScale)
        let grad = work.array
        XCTAssertEqual(count, scored)
        // The summed loss covers exactly the scored rows (Double reference).
        let reference = referenceCrossEntropy(logits.pointer, targets: targets, vocab: vocab)
        XCTAssertEqual(sum, reference * Double(scored), accuracy: 1e-6 * sum)
        // L = mean loss over scored rows; FD against the Double reference.
        let loss = { referenceCrossEntropy(logits.pointer, targets: targets, vocab: vocab) }
        gc.check(
            "cross-entropy logits", x: logits.pointer, count: logits.count, analytic: grad,
            extra: [0 * vocab + 3, 2 * vocab + 20, 5 * vocab + 16], loss: loss)
        for r in [1, 4] {
            XCTAssertEqual(Array(grad[r * vocab..<(r + 1) * vocab]), [Float](repeating: 0, count: vocab), "row \(r)")
        }
        // Changing an ignored row changes neither the kernel's loss nor its count.
        for i in 0..<vocab { logits[vocab + i] += 5 * Float(i % 3) - 4 }
        work.pointer.update(from: logits.pointer, count: logits.count)
        let again = CrossEntropyKernel.forwardBackward(
            logits: work.pointer, targets: targets, rows: rows, vocab: vocab, gradScale: gradScale)
        XCTAssertEqual(again.lossSum, sum)
        XCTAssertEqual(again.count, scored)
        XCTAssertEqual(work.array, grad)
        // Each scored row's gradient sums to zero (softmax minus one-hot).
        for r in [0, 2, 3, 5] {
            XCTAssertEqual(grad[r * vocab..<(r + 1) * vocab].reduce(0, +), 0, accuracy: 1e-6, "row \(r)")
        }
    }
}
