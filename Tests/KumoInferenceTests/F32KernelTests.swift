import KumoCore
import XCTest

@testable import KumoInference

/// Every fp32 matrix-vector kernel the CPU runs (plain C, AVX2, AVX-512) equals a float64 product, for
/// column counts with and without a remainder past the vector width, several input rows, and
/// accumulating onto the output or not.
final class F32KernelTests: XCTestCase {
    func testEveryKernelEqualsFloat64Product() {
        XCTAssertTrue(F32Kernel.supported.contains(.scalar))
        print("fp32 kernels on this CPU: \(F32Kernel.supported), selected \(F32Kernel.selected)")
        var rng = SeededRandom(seed: 11)
        for (rows, columns, count) in [(37, 37, 3), (50, 576, 1), (16, 1552, 8), (5, 7, 2)] {
            let ws = (0..<(rows * columns)).map { _ in Float(rng.uniform() * 2 - 1) }
            let xs = (0..<(count * columns)).map { _ in Float(rng.uniform() * 2 - 1) }
            var expected = [Double](repeating: 0, count: count * rows)
            for b in 0..<count {
                for r in 0..<rows {
                    expected[b * rows + r] = (0..<columns).reduce(0.0) {
                        $0 + Double(ws[r * columns + $1]) * Double(xs[b * columns + $1])
                    }
                }
            }
            let w = FloatBuffer(ws)
            let x = FloatBuffer(xs)
            for kernel in F32Kernel.supported {
                for accumulate in [false, true] {
                    let y = FloatBuffer([Float](repeating: 1, count: count * rows))
                    F32MatVec.apply(
                        w: w.pointer, rows: rows, columns: columns, x: x.pointer, y: y.pointer, count: count,
                        accumulate: accumulate, kernel: kernel)
                    let got = y.array.map { Double(accumulate ? $0 - 1 : $0) }
                    let worst = zip(got, expected).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(
                        worst, 1e-4 * Double(columns).squareRoot(), "\(kernel) \(rows)×\(columns)×\(count)")
                }
            }
        }
    }
}
