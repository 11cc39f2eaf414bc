import Foundation
import XCTest

@testable import KumoCore

final class KernelTests: XCTestCase {
    private let verbose = ProcessInfo.processInfo.environment["KUMO_GRADCHECK_VERBOSE"] == "1"

    override func setUp() { Threads.set(1) }

    func testExp8IsWithinThreeTenthsOfAMillionthOfFoundationExpOnMinus80To80() {
        // A 1e-3 grid over [-80, 80] (160 001 points), a dense band around 0 and a few special
        // values, each lane at a different point; the reference is exp in Double.
        var inputs = (0...160_000).map { Float(-80 + Double($0) * 1e-3) }
        inputs += (0..<4096).map { Float(Double($0 - 2048) * 1.7e-4) }
        inputs += [-80, 80, 0, -0.0, Float(M_LN2), -Float(M_LN2), 0.5 * Float(M_LN2), 1e-8, -1e-8]
        while inputs.count % 8 != 0 { inputs.append(1) }
        var worst = 0.0
        var worstAt: Float = 0
        for i in stride(from: 0, to: inputs.count, by: 8) {
            let v = SIMD8<Float>(inputs[i..<i + 8])
            let e = exp8(v)
            for lane in 0..<8 {
                let ref = Foundation.exp(Double(v[lane]))
                let err = abs(Double(e[lane]) - ref) / ref
                if err > worst { (worst, worstAt) = (err, v[lane]) }
            }
        }
        if verbose { print("exp8: worst relative error \(worst) at x = \(worstAt) over \(inputs.count) points") }
        XCTAssertLessThan(worst, 3e-7, "worst relative error \(worst) at x = \(worstAt)")
        XCTAssertGreaterThan(worst, 0, "exp8 cannot be exact in fp32")
    }

    func testExp8StaysFiniteUpToTheTopOfTheFloatRange() {
        for x: Float in [88.0, 88.3, 88.376, 88.5, 88.7, 100, 1000] {
            let e = exp8(SIMD8(repeating: x))[0]
            XCTAssertTrue(e.isFinite && e > 1e38, "exp8(\(x)) = \(e)")
        }
        let x: Float = 88.3
        let reference = Foundation.exp(Double(x))
        XCTAssertEqual(Double(exp8(SIMD8(repeating: x))[0]), reference, accuracy: 3e-7 * reference)
    }

    func testGemmMatchesNaiveProductForEveryTransposeCombination() {
        let (m, n, k) = (5, 7, 3)
        var rng = SeededRandom(seed: 1)
        let a = (0..<(m * k)).map { _ in Float(rng.normal()) }
        let b = (0..<(k * n)).map { _ in Float(rng.normal()) }
        for ta in [Transpose.none, .transposed] {
            for tb in [Transpose.none, .transposed] {
                // Store A as [m,k] or its transpose [k,m], and likewise B.
                let aStored = ta == .none ? a : (0..<(k * m)).map { a[($0 % m) * k + $0 / m] }
                let bStored = tb == .none ? b : (0..<(n * k)).map { b[($0 % k) * n + $0 / k] }
                var c = [Float](repeating: 1, count: m * n)
                gemm(
                    ta, tb, m: m, n: n, k: k, alpha: 2, a: aStored, lda: ta == .none ? k : m, b: bStored,
                    ldb: tb == .none ? n : k, beta: 0.5, c: &c, ldc: n)
                for i in 0..<m {
                    for j in 0..<n {
                        let ref = 2 * (0..<k).reduce(Float(0)) { $0 + a[i * k + $1] * b[$1 * n + j] } + 0.5
                        XCTAssertEqual(c[i * n + j], ref, accuracy: 1e-5, "\(ta) \(tb) [\(i),\(j)]")
                    }
                }
            }
        }
    }

    func testRoPELeavesPositionZeroAndRotatesNormPreservingly() {
        let table = RoPETable(headDim: 16, maxPositions: 4, theta: 10000)
        var rng = SeededRandom(seed: 3)
        let x = (0..<(4 * 16)).map { _ in Float(rng.normal()) }
        let y = FloatBuffer(x)
        table.apply(y.pointer, rows: 4, seqLen: 4, heads: 1)
        XCTAssertEqual(Array(y.array[0..<16]), Array(x[0..<16]))
        for r in 1..<4 {
            let before = x[(r * 16)..<(r * 16 + 16)].reduce(0) { $0 + $1 * $1 }
            let after = Array(y.array[(r * 16)..<(r * 16 + 16)]).reduce(0) { $0 + $1 * $1 }
            XCTAssertEqual(before, after, accuracy: 1e-4 * before)
            XCTAssertNotEqual(Array(y.array[(r * 16)..<(r * 16 + 16)]), Array(x[(r * 16)..<(r * 16 + 16)]))
        }
        // Pair (j, j + 8) at position 1 rotates by angle 1 · theta^(-2j/16).
        let angle = pow(10000.0, -2.0 * 3 / 16)
        XCTAssertEqual(
            Double(y[16 + 3]), Double(x[16 + 3]) * cos(angle) - Double(x[16 + 11]) * sin(angle), accuracy: 1e-5)
    }

    func testAdamWKernelMatchesTheTorchFormulaAndSkipsDecayWhenAsked() {
        let hyper = AdamWHyper(lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        for decay in [true, false] {
            var p: [Float] = [0.5, -1, 2, 0, 3, -0.25, 1, 1, 0.1]
            let g: [Float] = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0, 1e-4, 2]
            var m = [Float](repeating: 0, count: 9)
            var v = [Float](repeating: 0, count: 9)
            var ref = p.map(Double.init)
            var rm = [Double](repeating: 0, count: 9)
            var rv = [Double](repeating: 0, count: 9)
            for step in 1...3 {
                AdamWKernel.update(
                    param: &p, grad: g, m: &m, v: &v, count: 9, step: step, hyper: hyper, decay: decay, gradScale: 0.5)
                for i in 0..<9 {
                    let gi = Double(g[i]) * 0.5
                    if decay { ref[i] *= 1 - 0.01 * 0.1 }
                    rm[i] = 0.9 * rm[i] + 0.1 * gi
                    rv[i] = 0.95 * rv[i] + 0.05 * gi * gi
                    let mh = rm[i] / (1 - pow(0.9, Double(step)))
                    let vh = rv[i] / (1 - pow(0.95, Double(step)))
                    ref[i] -= 0.01 * mh / (vh.squareRoot() + 1e-8)
                }
            }
            for i in 0..<9 { XCTAssertEqual(Double(p[i]), ref[i], accuracy: 1e-6, "decay \(decay) [\(i)]") }
        }
    }

    func testSumOfSquaresIsExactForSmallIntegers() {
        let x = (0..<10_001).map { Float($0 % 7) }
        let expected = x.reduce(0.0) { $0 + Double($1 * $1) }
        XCTAssertEqual(AdamWKernel.sumOfSquares(x, count: x.count), expected)
    }
}
