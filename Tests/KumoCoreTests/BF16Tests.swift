import Foundation
import XCTest

@testable import KumoCore

/// bf16 rounding and the bf16 product on both backends where they run (only the widened one
/// on a CPU without AVX512_BF16, where it is the fallback).
final class BF16Tests: XCTestCase {
    override func setUp() { Threads.set(1) }

    /// Round to nearest even on the bit pattern, NaN kept quiet: the rule PyTorch's
    /// `.to(torch.bfloat16)` follows.
    private func referenceRound(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(u >> 16) | 0x40 }
        return UInt16((u &+ 0x7fff &+ ((u >> 16) & 1)) >> 16)
    }

    func testRoundingIsToNearestEvenWithTiesAndSpecialValues() {
        let ulp: Float = 1.0 / 128  // bf16's spacing at 1
        XCTAssertEqual(BF16.rounded(1 + ulp / 2), 1, "a tie rounds to the even neighbour below")
        XCTAssertEqual(BF16.rounded(1 + 3 * ulp / 2), 1 + 2 * ulp, "a tie rounds to the even neighbour above")
        XCTAssertEqual(BF16.rounded(1 + ulp / 2 + ulp / 64), 1 + ulp, "past the tie rounds up")
        XCTAssertEqual(BF16.rounded(-1 - ulp / 4), -1)
        XCTAssertEqual(BF16.rounded(.infinity), .infinity)
        XCTAssertEqual(BF16.rounded(3.4e38), .infinity, "beyond bf16's largest finite value")
        XCTAssertTrue(BF16.rounded(.nan).isNaN)
        XCTAssertTrue(BF16.rounded(Float(bitPattern: 0x7f80_0001)).isNaN, "a NaN whose payload rounds away stays NaN")
    }

    func testVectorRoundingMatchesTheScalarRuleOnEveryLane() {
        var rng = SeededRandom(seed: 3)
        var xs = (0..<4099).map { _ in Float(rng.normal() * 10) }
        xs += [0, -0.0, .infinity, -.infinity, .nan, 1.00390625, 1.01171875, .leastNonzeroMagnitude, 3.4e38]
        let out = [UInt16](unsafeUninitializedCapacity: xs.count) { buffer, n in
            BF16.round(xs, into: buffer.baseAddress!, count: xs.count)
            n = xs.count
        }
        let mismatches = (0..<xs.count).filter { out[$0] != referenceRound(xs[$0]) }
        XCTAssertEqual(mismatches.count, 0, "first mismatches at \(mismatches.prefix(5)) of \(xs.count) values")
    }

    /// op(A)·op(B) in Double from the bf16-rounded operands.
    private func reference(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, a: [Float], b: [Float], c: [Float],
        beta: Float
    ) -> [Double] {
        let a = a.map { Double(BF16.rounded($0)) }
        let b = b.map { Double(BF16.rounded($0)) }
        return (0..<m * n).map { idx in
            let (i, j) = (idx / n, idx % n)
            var s = Double(beta) * Double(c[idx])
            for p in 0..<k {
                s += a[transA == .none ? i * k + p : p * m + i] * b[transB == .none ? p * n + j : j * k + p]
            }
            return s
        }
    }

    private func check(
        _ backend: BF16GEMM.Backend, _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        bInBF16: Bool, beta: Float
    ) {
        var rng = SeededRandom(seed: UInt64(m * 31 + n * 7 + k))
        let a = (0..<m * k).map { _ in Float(rng.normal()) }
        let b = (0..<k * n).map { _ in Float(rng.normal()) }
        let c0 = (0..<m * n).map { _ in Float(rng.normal()) }
        let expected = reference(transA, transB, m: m, n: n, k: k, a: a, b: b, c: c0, beta: beta)
        let b16 = BF16Buffer(count: b.count)
        BF16.round(b, into: b16.pointer, count: b.count)
        let c = FloatBuffer(c0)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                gemmBF16(
                    transA, transB, m: m, n: n, k: k, a: .fp32(ap.baseAddress!), lda: transA == .none ? k : m,
                    b: bInBF16 ? .bf16(b16.pointer) : .fp32(bp.baseAddress!), ldb: transB == .none ? n : k,
                    beta: beta, c: c.pointer, ldc: n, backend: backend)
            }
        }
        var num = 0.0
        var den = 0.0
        for i in 0..<m * n {
            num += (Double(c[i]) - expected[i]) * (Double(c[i]) - expected[i])
            den += expected[i] * expected[i]
        }
        let err = (num / den).squareRoot()
        XCTAssertLessThan(err, 1e-6, "\(backend) \(transA)·\(transB) \(m)×\(n)×\(k): relative error \(err)")
    }

    private var backends: [BF16GEMM.Backend] { BF16GEMM.oneDNNAvailable ? [.onednn, .widened] : [.widened] }

    func testBF16ProductMatchesDoubleOnRoundedOperandsForEveryTransposeAndBackend() {
        for backend in backends {
            for (ta, tb) in [(Transpose.none, Transpose.transposed), (.none, .none), (.transposed, .none)] {
                check(backend, ta, tb, m: 37, n: 29, k: 53, bInBF16: false, beta: 0)
                check(backend, ta, tb, m: 37, n: 29, k: 53, bInBF16: true, beta: 1)
            }
        }
    }

    func testBF16ProductConvertsLargeOperandsInBlocks() {
        // 2100 × 4096 operands exceed the 8M elements converted at once: A in row blocks, B
        // (bf16, widened for sgemm) in column blocks.
        for backend in backends {
            check(backend, .none, .transposed, m: 2100, n: 3, k: 4096, bInBF16: false, beta: 1)
            check(backend, .none, .transposed, m: 3, n: 2100, k: 4096, bInBF16: true, beta: 0)
        }
    }

    func testWithoutBF16UnitsTheWidenedFallbackIsChosenAndSaysSo() {
        if !BF16GEMM.cpuHasBF16Units {
            XCTAssertEqual(BF16GEMM.backend, .widened)
            XCTAssertTrue(BF16GEMM.selection.reason.contains("no bf16 units"), BF16GEMM.selection.reason)
        } else {
            XCTAssertTrue(BF16GEMM.selection.reason.contains("bf16 GEMM") || !BF16GEMM.oneDNNAvailable)
        }
        XCTAssertGreaterThan(BF16GEMM.measure(n: 256, repeats: 2), 0)
    }
}
