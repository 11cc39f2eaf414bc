import Foundation
import KumoCore
import XCTest

/// What one finite-difference comparison measured over its sampled coordinates.
struct GradientCheckResult {
    /// ‖g_fd − g‖ / ‖g‖ over the sample.
    var relativeError: Double
    /// max_i |g_fd,i − g_i| / rms(g) over the sample: catches one wrong coordinate that the
    /// norm-wise error would average away.
    var worstCoordinate: Double
    /// ‖g‖ over the sample (zero means the check would prove nothing).
    var analyticNorm: Double
    /// The coordinates compared.
    var indices: [Int]
}

/// Central finite differences (L(x+h) − L(x−h)) / 2h against an analytic gradient, on a
/// deterministic sample of coordinates of one fp32 tensor. Set KUMO_GRADCHECK_VERBOSE=1 to
/// print every measured error, not only failing ones.
struct GradientCheck {
    var step: Float = 2e-3
    var samples = 32
    /// Bound on `relativeError`.
    var tolerance = 1e-2
    /// Bound on `worstCoordinate`.
    var coordinateTolerance = 3e-2

    static let verbose = ProcessInfo.processInfo.environment["KUMO_GRADCHECK_VERBOSE"] == "1"

    /// `samples` distinct coordinates of a tensor of `count` floats (all of them when it is
    /// that small), drawn with a seed derived from `name`, plus `extra`.
    func indices(_ name: String, count: Int, extra: [Int] = []) -> [Int] {
        var picks: [Int]
        if count <= samples {
            picks = Array(0..<count)
        } else {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the name
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            var rng = SeededRandom(seed: hash ^ UInt64(count))
            var all = Array(0..<count)
            for i in 0..<samples { all.swapAt(i, i + Int(rng.next() % UInt64(count - i))) }
            picks = Array(all[0..<samples])
        }
        for e in extra where !picks.contains(e) {
            precondition(e >= 0 && e < count, "extra coordinate \(e) outside a tensor of \(count)")
            picks.append(e)
        }
        return picks
    }

    /// Perturbs `x[i]` for each i in `indices`, evaluates `loss` and compares with `analytic[i]`.
    func measure(
        x: UnsafeMutablePointer<Float>, analytic: [Float], indices: [Int], loss: () -> Double
    ) -> GradientCheckResult {
        var fd = [Double]()
        for i in indices {
            let saved = x[i]
            x[i] = saved + step
            let up = loss()
            x[i] = saved - step
            let down = loss()
            x[i] = saved
            // The perturbation actually applied, after rounding to fp32.
            let h = Double(saved + step) - Double(saved - step)
            fd.append((up - down) / h)
        }
        var diff = 0.0
        var norm = 0.0
        var worst = 0.0
        for (k, i) in indices.enumerated() {
            let e = fd[k] - Double(analytic[i])
            diff += e * e
            norm += Double(analytic[i]) * Double(analytic[i])
            worst = max(worst, abs(e))
        }
        let rms = (norm / Double(max(indices.count, 1))).squareRoot()
        return GradientCheckResult(
            relativeError: (diff / max(norm, 1e-300)).squareRoot(), worstCoordinate: worst / max(rms, 1e-300),
            analyticNorm: norm.squareRoot(), indices: indices)
    }

    /// Whether a measurement is within the tolerances (and the gradient is not zero).
    func passes(_ r: GradientCheckResult) -> Bool {
        r.analyticNorm > 0 && r.relativeError < tolerance && r.worstCoordinate < coordinateTolerance
    }

    /// Asserts that `analytic` matches finite differences of `loss` with respect to the
    /// `count` floats at `x`, on a sample of coordinates plus `extra` ones.
    @discardableResult
    func check(
        _ name: String, x: UnsafeMutablePointer<Float>, count: Int, analytic: [Float], extra: [Int] = [],
        loss: () -> Double, file: StaticString = #filePath, line: UInt = #line
    ) -> GradientCheckResult {
        XCTAssertEqual(analytic.count, count, "\(name): gradient size", file: file, line: line)
        let r = measure(x: x, analytic: analytic, indices: indices(name, count: count, extra: extra), loss: loss)
        let summary =
            name
            + String(
                format: ": relative error %.2e, worst coordinate %.2e of rms, |g| %.3e over %d coordinates",
                r.relativeError, r.worstCoordinate, r.analyticNorm, r.indices.count)
        if Self.verbose { print("gradcheck " + summary) }
        XCTAssertGreaterThan(
            r.analyticNorm, 0, "\(name): analytic gradient is zero on the sample", file: file, line: line)
        XCTAssertLessThan(r.relativeError, tolerance, summary, file: file, line: line)
        XCTAssertLessThan(r.worstCoordinate, coordinateTolerance, summary, file: file, line: line)
        return r
    }
}

/// A buffer of seeded N(0, scale²) values.
func randomBuffer(_ count: Int, seed: UInt64, scale: Double = 1) -> FloatBuffer {
    var rng = SeededRandom(seed: seed)
    let b = FloatBuffer(count: count)
    for i in 0..<count { b[i] = Float(rng.normal() * scale) }
    return b
}

/// Σ a ⊙ b in Double: the scalar loss L = Σ out ⊙ R.
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Double {
    var s = 0.0
    for i in 0..<count { s += Double(a[i]) * Double(b[i]) }
    return s
}

/// The `count` floats behind a pointer, as an array.
func values(_ p: UnsafePointer<Float>, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

/// Mean softmax cross-entropy in Double over the rows whose target is not -100.
func referenceCrossEntropy(_ logits: UnsafePointer<Float>, targets: [Int32], vocab: Int) -> Double {
    var total = 0.0
    var scored = 0
    for (r, t) in targets.enumerated() where t != CrossEntropyKernel.ignoreIndex {
        let row = logits + r * vocab
        var m = -Double.infinity
        for j in 0..<vocab { m = max(m, Double(row[j])) }
        var s = 0.0
        for j in 0..<vocab { s += Foundation.exp(Double(row[j]) - m) }
        total += m + Foundation.log(s) - Double(row[Int(t)])
        scored += 1
    }
    return total / Double(scored)
}
