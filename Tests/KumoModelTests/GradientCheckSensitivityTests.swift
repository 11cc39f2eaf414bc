import KumoCore
import XCTest

@testable import KumoModel

/// The finite-difference checks can fail: gradients with realistic mistakes exceed the
/// tolerances that the correct gradients meet.
final class GradientCheckSensitivityTests: XCTestCase {
    private let gc = GradientCheck()

    override func setUp() { Threads.set(1) }

    private func assertRejected(
        _ what: String, _ r: GradientCheckResult, file: StaticString = #filePath, line: UInt = #line
    ) {
        if GradientCheck.verbose {
            print(
                "gradcheck rejected \(what): relative error \(r.relativeError), worst coordinate \(r.worstCoordinate)")
        }
        XCTAssertFalse(
            gc.passes(r),
            "\(what) passed: relative error \(r.relativeError), worst coordinate \(r.worstCoordinate)",
            file: file, line: line)
    }

    func testGradientCheckRejectsPerturbedLinearGradients() {
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
        let good = dw.array
        let picks = gc.indices("linear weight", count: w.count)
        func measure(_ g: [Float]) -> GradientCheckResult {
            gc.measure(x: w.pointer, analytic: g, indices: picks, loss: loss)
        }
        XCTAssertTrue(gc.passes(measure(good)), "the correct gradient must pass")

        assertRejected("gradient scaled by 1.03", measure(good.map { $0 * 1.03 }))
        assertRejected("all-zero gradient", measure([Float](repeating: 0, count: good.count)))
        var oneOff = good
        let rms = (picks.reduce(0.0) { $0 + Double(good[$1] * good[$1]) } / Double(picks.count)).squareRoot()
        oneOff[picks[7]] += Float(0.1 * rms)  // one coordinate off by 10% of the typical size
        assertRejected("one coordinate off by 0.1·rms", measure(oneOff))
        var flipped = good
        flipped[picks[3]] = -flipped[picks[3]]
        assertRejected("one coordinate with the wrong sign", measure(flipped))
        // dW laid out [in, out] instead of PyTorch's [out, in].
        let transposed = (0..<good.count).map { good[($0 % outF) * inF + $0 / outF] }
        assertRejected("transposed weight gradient", measure(transposed))
        // dx instead: wrong by sign.
        assertRejected(
            "negated input gradient",
            gc.measure(
                x: x.pointer, analytic: dx.array.map { -$0 }, indices: gc.indices("x", count: x.count), loss: loss)
        )
    }

    func testGradientCheckRejectsTheForwardRotationAsRoPEBackward() {
        let (rows, seq, heads, hd) = (6, 3, 2, 20)
        let table = RoPETable(headDim: hd, maxPositions: 8, theta: 10000)
        let x = randomBuffer(rows * heads * hd, seed: 9)
        let r = randomBuffer(x.count, seed: 10)
        let y = FloatBuffer(count: x.count)
        let loss = { () -> Double in
            y.pointer.update(from: x.pointer, count: x.count)
            table.apply(y.pointer, rows: rows, seqLen: seq, heads: heads)
            return dot(y.pointer, r.pointer, y.count)
        }
        // Coordinates of positions 1 and 2 (position 0 is not rotated, so both agree there).
        let width = heads * hd
        let picks = gc.indices("rope", count: x.count, extra: [1 * width + 2, 2 * width + 30, 5 * width + 13])
        let wrong = FloatBuffer(r.array)
        table.apply(wrong.pointer, rows: rows, seqLen: seq, heads: heads, inverse: false)
        assertRejected(
            "forward rotation as backward", gc.measure(x: x.pointer, analytic: wrong.array, indices: picks, loss: loss))
    }

    func testGradientCheckRejectsGQAKeyGradientsOfTheWrongGroup() {
        let f = AttentionFixture(heads: 4, kvHeads: 2, seq: 9)
        let d = 8
        // dk with the two key/value heads' columns swapped: each group's gradient lands on the other.
        let good = f.dk.array
        var swapped = good
        for row in 0..<(f.k.count / (2 * d)) {
            for j in 0..<d {
                swapped[row * 2 * d + j] = good[row * 2 * d + d + j]
                swapped[row * 2 * d + d + j] = good[row * 2 * d + j]
            }
        }
        let picks = gc.indices("gqa k", count: f.k.count)
        XCTAssertTrue(gc.passes(gc.measure(x: f.k.pointer, analytic: good, indices: picks, loss: f.loss)))
        assertRejected(
            "swapped key groups", gc.measure(x: f.k.pointer, analytic: swapped, indices: picks, loss: f.loss))
        // dv that counts only the first query head of each group (a GQA reduction bug).
        let partial = FloatBuffer(f.r.array)
        for row in 0..<(partial.count / (4 * d)) {
            for h in [1, 3] { (partial.pointer + row * 4 * d + h * d).update(repeating: 0, count: d) }
        }
        let (dq, dk, dv) = (FloatBuffer(count: f.q.count), FloatBuffer(count: f.k.count), FloatBuffer(count: f.v.count))
        _ = f.loss()  // out and lse of the unperturbed inputs
        AttentionKernel.backward(
            dout: partial.pointer, q: f.q.pointer, k: f.k.pointer, v: f.v.pointer, out: f.out.pointer,
            lse: f.lse.pointer, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, shape: f.shape)
        assertRejected(
            "value gradient of one head per group",
            gc.measure(x: f.v.pointer, analytic: dv.array, indices: gc.indices("gqa v", count: f.v.count), loss: f.loss)
        )
    }

    func testGradientCheckRejectsCrossEntropyGradientWithoutTheMeanScale() {
        let (rows, vocab) = (4, 10)
        let logits = randomBuffer(rows * vocab, seed: 50, scale: 2)
        let targets: [Int32] = [1, 9, -100, 4]
        let work = FloatBuffer(logits.array)
        _ = CrossEntropyKernel.forwardBackward(
            logits: work.pointer, targets: targets, rows: rows, vocab: vocab, gradScale: 1)
        let loss = { referenceCrossEntropy(logits.pointer, targets: targets, vocab: vocab) }
        // L is the mean over 3 scored rows; gradScale 1 gives the gradient of the sum.
        assertRejected(
            "sum instead of mean",
            gc.measure(
                x: logits.pointer, analytic: work.array, indices: gc.indices("ce", count: logits.count), loss: loss))
    }
}
