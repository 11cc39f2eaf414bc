import KumoCore
import XCTest

@testable import KumoInference

/// Every Q8 kernel the CPU runs (plain C, AVX2, AVX-512 VNNI) equals a naive product of the
/// dequantized weights with the input quantized to int16 blocks, and the kernels equal each other.
final class Q8KernelTests: XCTestCase {
    private func random(_ count: Int, _ rng: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
    }

    /// x quantized to int16 per block of 32 (scale max|x| / 32767), and dequantized.
    private func q16RoundTrip(_ x: [Float]) -> [Float] {
        stride(from: 0, to: x.count, by: Q8Matrix.blockSize).flatMap { lo in
            let block = x[lo..<(lo + Q8Matrix.blockSize)]
            let scale = block.map(abs).max()! / 32767
            let inverse = scale == 0 ? 0 : 1 / scale
            return block.map { ($0 * inverse).rounded() * scale }
        }
    }

    /// y = W·x for `count` rows by every kernel, accumulating onto ones and not, for block counts
    /// even and odd (VNNI takes blocks in pairs).
    func testEveryKernelEqualsNaiveProductOfQuantizedOperands() {
        XCTAssertTrue(Q8Kernel.supported.contains(.scalar))
        print("Q8 kernels on this CPU: \(Q8Kernel.supported), selected \(Q8Kernel.selected)")
        var rng = SeededRandom(seed: 5)
        for (rows, columns, count) in [(37, 96, 3), (50, 576, 1), (16, 1536, 8)] {
            let w = FloatBuffer(random(rows * columns, &rng))
            let matrix = Q8Matrix(weights: w.pointer, rows: rows, columns: columns)
            let xs = random(count * columns, &rng)
            let xq = q16RoundTrip(xs)
            var expected = [Float](repeating: 0, count: count * rows)
            for b in 0..<count {
                for r in 0..<rows {
                    expected[b * rows + r] = Float(
                        (0..<columns).reduce(0.0) {
                            $0 + Double(matrix.dequantized(row: r, column: $1)) * Double(xq[b * columns + $1])
                        })
                }
            }
            let x = FloatBuffer(xs)
            var outputs: [[Float]] = []
            for kernel in Q8Kernel.supported {
                for accumulate in [false, true] {
                    let y = FloatBuffer([Float](repeating: 1, count: count * rows))
                    matrix.apply(x: x.pointer, y: y.pointer, count: count, accumulate: accumulate, kernel: kernel)
                    let got = y.array.map { accumulate ? $0 - 1 : $0 }
                    let worst = zip(got, expected).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(worst, 1e-4, "\(kernel) \(rows)×\(columns), accumulate \(accumulate)")
                    if !accumulate { outputs.append(got) }
                }
            }
            for (kernel, out) in zip(Q8Kernel.supported, outputs) {
                let worst = zip(out, outputs[0]).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-5, "\(kernel) vs scalar, \(rows)×\(columns): \(worst)")
            }
        }
    }
}
