import Foundation
import XCTest

@testable import KumoCore

/// Random q, k, v and dout for one attention shape.
private struct AttentionInputs {
    let shape: AttentionShape
    let q, k, v, dout: [Float]

    init(batch: Int, seq: Int, heads: Int, kvHeads: Int, headDim: Int, seed: UInt64 = 2, qScale: Double = 2) {
        shape = AttentionShape(batch: batch, seqLen: seq, heads: heads, kvHeads: kvHeads, headDim: headDim)
        var rng = SeededRandom(seed: seed)
        let (rows, qw, kvw) = (batch * seq, heads * headDim, kvHeads * headDim)
        q = (0..<(rows * qw)).map { _ in Float(rng.normal() * qScale) }
        k = (0..<(rows * kvw)).map { _ in Float(rng.normal()) }
        v = (0..<(rows * kvw)).map { _ in Float(rng.normal()) }
        dout = (0..<(rows * qw)).map { _ in Float(rng.normal()) }
    }

    /// Out, and dq, dk, dv for dout, from the flash kernel; lse too.
    func flash() -> (out: [Float], lse: [Float], dq: [Float], dk: [Float], dv: [Float]) {
        let out = FloatBuffer(count: q.count)
        let lse = FloatBuffer(count: shape.logsumexpCount)
        let (dq, dk, dv) = (FloatBuffer(count: q.count), FloatBuffer(count: k.count), FloatBuffer(count: v.count))
        AttentionKernel.forward(q: q, k: k, v: v, out: out.pointer, lse: lse.pointer, shape: shape)
        AttentionKernel.backward(
            dout: dout, q: q, k: k, v: v, out: out.pointer, lse: lse.pointer, dq: dq.pointer, dk: dk.pointer,
            dv: dv.pointer, shape: shape)
        return (out.array, lse.array, dq.array, dk.array, dv.array)
    }

    /// The same from the blocked kernel that keeps the T×T probabilities.
    func blocked() -> (out: [Float], dq: [Float], dk: [Float], dv: [Float]) {
        let out = FloatBuffer(count: q.count)
        let probs = FloatBuffer(count: BlockedAttentionReference.probsCount(shape))
        let (dq, dk, dv) = (FloatBuffer(count: q.count), FloatBuffer(count: k.count), FloatBuffer(count: v.count))
        let scratch = FloatBuffer(count: BlockedAttentionReference.scratchCount(shape))
        BlockedAttentionReference.forward(q: q, k: k, v: v, out: out.pointer, probs: probs.pointer, shape: shape)
        BlockedAttentionReference.backward(
            dout: dout, q: q, k: k, v: v, probs: probs.pointer, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer,
            scratch: scratch.pointer, shape: shape)
        return (out.array, dq.array, dk.array, dv.array)
    }
}

private func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

final class FlashAttentionTests: XCTestCase {
    override func setUp() { Threads.set(1) }
    override func tearDown() { Threads.set(1) }

    /// Shapes with one and several key tiles, sequence lengths that are not a multiple of the
    /// query tile, multi-head, grouped-query and multi-query heads.
    func testForwardAndGradientsMatchTheBlockedKernelWithinOneHundredThousandth() {
        let keyTile = AttentionKernel.keyTile
        for (batch, seq, heads, kvHeads, d) in [
            (2, 70, 4, 2, 8), (1, 2 * keyTile + 9, 4, 1, 16), (2, keyTile, 2, 2, 64), (1, keyTile + 44, 6, 3, 12),
        ] {
            let x = AttentionInputs(batch: batch, seq: seq, heads: heads, kvHeads: kvHeads, headDim: d)
            let (flash, blocked) = (x.flash(), x.blocked())
            let errors = [
                maxAbsDifference(flash.out, blocked.out), maxAbsDifference(flash.dq, blocked.dq),
                maxAbsDifference(flash.dk, blocked.dk), maxAbsDifference(flash.dv, blocked.dv),
            ]
            let name = "B\(batch) T\(seq) H\(heads)/\(kvHeads) d\(d)"
            print("flash vs blocked attention \(name): max |Δ| out, dq, dk, dv = \(errors)")
            for (error, what) in zip(errors, ["out", "dq", "dk", "dv"]) {
                XCTAssertLessThan(error, 1e-5, "\(name) \(what)")
            }
        }
    }

    /// lse is log Σ_{j ≤ i} exp(q_i·k_j/√d), computed here in Double, even where the scores reach
    /// 100 and more (exp of them overflows fp32, so the online softmax must shift by the running max).
    func testLogsumexpIsEachRowsCausalLogPartitionSumEvenForHugeScores() {
        let (seq, heads, kvHeads, d) = (AttentionKernel.keyTile + 44, 2, 1, 16)
        let x = AttentionInputs(batch: 1, seq: seq, heads: heads, kvHeads: kvHeads, headDim: d, qScale: 40)
        let flash = x.flash()
        var worst = 0.0
        var largest = 0.0
        for h in 0..<heads {
            for i in 0..<seq {
                let scores = (0...i).map { j in
                    (0..<d).reduce(0.0) { $0 + Double(x.q[(i * heads + h) * d + $1]) * Double(x.k[j * d + $1]) }
                        / Double(d).squareRoot()
                }
                let m = scores.max()!
                largest = max(largest, m)
                let lse = m + Foundation.log(scores.reduce(0) { $0 + Foundation.exp($1 - m) })
                worst = max(worst, abs(lse - Double(flash.lse[h * seq + i])) / max(1, abs(lse)))
            }
        }
        print("flash attention lse: worst relative error \(worst), largest score \(largest)")
        XCTAssertGreaterThan(largest, 100)
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertTrue((flash.out + flash.dq + flash.dk + flash.dv).allSatisfy(\.isFinite))
        // The first token attends only to itself: its output is its value vector.
        XCTAssertEqual(Array(flash.out[0..<d]), Array(x.v[0..<d]))
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let x = AttentionInputs(batch: 2, seq: AttentionKernel.keyTile + 70, heads: 4, kvHeads: 2, headDim: 16)
        let one = x.flash()
        Threads.set(2)
        let two = x.flash()
        XCTAssertEqual(one.out, two.out)
        XCTAssertEqual(one.lse, two.lse)
        XCTAssertEqual(one.dq + one.dk + one.dv, two.dq + two.dk + two.dv)
    }
}
