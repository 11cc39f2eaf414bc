import Foundation
import XCTest

@testable import KumoCore

/// Positions restarting at 0 at each document of each row: `documents[b]` lists row b's document
/// lengths, which sum to the sequence length.
private func documentPositions(_ documents: [[Int]]) -> [Int32] {
    documents.flatMap { row in row.flatMap { (0..<$0).map(Int32.init) } }
}

/// Packed-document attention: the flash kernel with positions against a naive masked softmax.
final class DocumentAttentionTests: XCTestCase {
    override func setUp() { Threads.set(2) }
    override func tearDown() { Threads.set(1) }

    struct Case {
        let shape: AttentionShape
        let positions: [Int32]
        let q, k, v, dout: [Float]

        init(heads: Int, kvHeads: Int, headDim: Int, documents: [[Int]], seed: UInt64 = 4) {
            let seq = documents[0].reduce(0, +)
            precondition(documents.allSatisfy { $0.reduce(0, +) == seq })
            shape = AttentionShape(
                batch: documents.count, seqLen: seq, heads: heads, kvHeads: kvHeads, headDim: headDim)
            positions = documentPositions(documents)
            var rng = SeededRandom(seed: seed)
            let rows = documents.count * seq
            func draw(_ count: Int) -> [Float] { (0..<count).map { _ in Float(rng.normal()) } }
            q = draw(rows * heads * headDim).map { $0 * 2 }
            k = draw(rows * kvHeads * headDim)
            v = draw(rows * kvHeads * headDim)
            dout = draw(rows * heads * headDim)
        }

        /// Out, dq, dk and dv of the flash kernel, with `positions` or plain causal.
        func flash(positions: [Int32]?) -> [[Float]] {
            let out = FloatBuffer(count: q.count)
            let lse = FloatBuffer(count: shape.logsumexpCount)
            let (dq, dk, dv) = (FloatBuffer(count: q.count), FloatBuffer(count: k.count), FloatBuffer(count: v.count))
            positions.withOptionalPointer { p in
                AttentionKernel.forward(
                    q: q, k: k, v: v, out: out.pointer, lse: lse.pointer, shape: shape, positions: p)
                AttentionKernel.backward(
                    dout: dout, q: q, k: k, v: v, out: out.pointer, lse: lse.pointer, dq: dq.pointer,
                    dk: dk.pointer, dv: dv.pointer, shape: shape, positions: p)
            }
            return [out.array, dq.array, dk.array, dv.array]
        }

        /// Out, dq, dk and dv in Double, row by row: softmax over keys t − positions[t] … t only.
        func reference() -> [[Double]] {
            let (t, d, hs, g) = (shape.seqLen, shape.headDim, shape.heads, shape.groupSize)
            let (qw, kvw) = (hs * d, shape.kvHeads * d)
            var out = [Double](repeating: 0, count: q.count)
            var dq = out
            var (dk, dv) = ([Double](repeating: 0, count: k.count), [Double](repeating: 0, count: v.count))
            let scale = 1 / Double(d).squareRoot()
            for b in 0..<shape.batch {
                for h in 0..<hs {
                    for i in 0..<t {
                        let qi = (b * t + i) * qw + h * d
                        let keys = Array((i - Int(positions[b * t + i]))...i)
                        func kv(_ j: Int) -> Int { (b * t + j) * kvw + h / g * d }
                        func dot(_ x: [Float], _ a: Int, _ y: [Float], _ c: Int) -> Double {
                            (0..<d).reduce(0.0) { $0 + Double(x[a + $1]) * Double(y[c + $1]) }
                        }
                        let scores = keys.map { dot(q, qi, k, kv($0)) * scale }
                        let m = scores.max()!
                        let e = scores.map { Foundation.exp($0 - m) }
                        let p = e.map { $0 / e.reduce(0, +) }
                        let dp = keys.map { dot(dout, qi, v, kv($0)) }
                        let delta = zip(p, dp).reduce(0.0) { $0 + $1.0 * $1.1 }
                        for (n, j) in keys.enumerated() {
                            let ds = p[n] * (dp[n] - delta) * scale
                            for c in 0..<d {
                                out[qi + c] += p[n] * Double(v[kv(j) + c])
                                dq[qi + c] += ds * Double(k[kv(j) + c])
                                dk[kv(j) + c] += ds * Double(q[qi + c])
                                dv[kv(j) + c] += p[n] * Double(dout[qi + c])
                            }
                        }
                    }
                }
            }
            return [out, dq, dk, dv]
        }
    }

    private func assertMatchesReference(_ c: Case, _ name: String) {
        let flash = c.flash(positions: c.positions)
        let reference = c.reference()
        for (n, what) in ["out", "dq", "dk", "dv"].enumerated() {
            XCTAssertTrue(flash[n].allSatisfy(\.isFinite), "\(name) \(what) not finite")
            let error = zip(flash[n], reference[n]).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
            print("document attention \(name) \(what): max |Δ| vs reference \(error)")
            XCTAssertLessThan(error, 1e-5, "\(name) \(what)")
        }
    }

    /// T = 300 (odd, one partial query tile, a key tile boundary at 256), grouped-query heads:
    /// documents of 1, 2 and 63 tokens, documents crossing the 64-row query tiles and the 256-key tile.
    func testPackedDocumentsMatchTheMaskedSoftmaxAcrossTileBoundaries() {
        let c = Case(
            heads: 4, kvHeads: 2, headDim: 16,
            documents: [[1, 63, 2, 70, 100, 64], [257, 43], [1, 1, 1, 297]])
        assertMatchesReference(c, "T300 H4/2")
    }

    /// In the query tile of rows 576…639 the first key tile starts at 250, where the rows of the
    /// document starting at 580 have no key: their online softmax starts at max −∞ and must not
    /// turn NaN. Multi-query heads, d not a multiple of 8.
    func testRowsWithoutKeysInAKeyTileStayFinite() {
        let c = Case(heads: 3, kvHeads: 1, headDim: 12, documents: [[250, 330, 20], [600]])
        assertMatchesReference(c, "T600 H3/1")
    }

    /// Every token its own document: each output is the token's value vector, and dv is dout.
    func testSingleTokenDocumentsAttendOnlyToThemselves() {
        let c = Case(heads: 2, kvHeads: 2, headDim: 8, documents: [Array(repeating: 1, count: 70)])
        let flash = c.flash(positions: c.positions)
        XCTAssertEqual(flash[0], c.v)
        XCTAssertEqual(flash[3], c.dout)
    }

    /// Positions that count 0…T−1 in every row are plain causal attention, bit for bit.
    func testOneDocumentPerRowEqualsCausalAttention() {
        let c = Case(heads: 4, kvHeads: 2, headDim: 16, documents: [[300], [300]])
        XCTAssertEqual(c.flash(positions: c.positions), c.flash(positions: nil))
    }
}

extension Optional where Wrapped == [Int32] {
    /// Calls `body` with a pointer to the array's elements, or nil.
    fileprivate func withOptionalPointer(_ body: (UnsafePointer<Int32>?) -> Void) {
        guard let self else { return body(nil) }
        self.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
