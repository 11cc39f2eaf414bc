import CKumoBF16
import Foundation
import KumoCore
import XCTest

@testable import KumoInference

/// The bf16 matrix-vector kernel (vdpbf16ps) equals a naive product of the bf16-rounded operands.
final class BF16MatrixTests: XCTestCase {
    /// Whether the kernel's flags (avx512_bf16, avx512f) are in /proc/cpuinfo.
    static func cpuInfoListsBF16() -> Bool {
        let info =
            FileManager.default.contents(atPath: "/proc/cpuinfo").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let flags = info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
        return flags.contains("avx512_bf16") && flags.contains("avx512f")
    }

    private func bf16(_ x: [Float]) -> [Float] {
        var rounded = [UInt16](repeating: 0, count: x.count)
        kumo_bf16_round(x, &rounded, x.count)
        return rounded.map { Float(bitPattern: UInt32($0) << 16) }
    }

    /// y = W·x for `count` rows, accumulating onto ones and not, for column counts that are and are
    /// not multiples of 64 (the kernel takes 64 columns per step, then 32).
    func testKernelEqualsNaiveProductOfRoundedOperands() throws {
        XCTAssertEqual(BF16Matrix.supported, Self.cpuInfoListsBF16(), "dispatch disagrees with /proc/cpuinfo")
        // Without the units the kernel must not run (it would SIGILL): the dispatch check above is the test.
        guard BF16Matrix.supported else { return }
        var rng = SeededRandom(seed: 9)
        for (rows, columns, count) in [(37, 96, 3), (50, 576, 1), (16, 1536, 8)] {
            let w = (0..<(rows * columns)).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
            let x = (0..<(count * columns)).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
            let (wb, xb) = (bf16(w), bf16(x))
            let expected = (0..<(count * rows)).map { i in
                let (b, r) = i.quotientAndRemainder(dividingBy: rows)
                return Float(
                    (0..<columns).reduce(0.0) { $0 + Double(wb[r * columns + $1]) * Double(xb[b * columns + $1]) })
            }
            let (weights, input) = (FloatBuffer(w), FloatBuffer(x))
            let matrix = BF16Matrix(weights: weights.pointer, rows: rows, columns: columns)
            for accumulate in [false, true] {
                let y = FloatBuffer([Float](repeating: 1, count: count * rows))
                matrix.apply(x: input.pointer, y: y.pointer, count: count, accumulate: accumulate)
                let worst = zip(y.array.map { accumulate ? $0 - 1 : $0 }, expected).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-4, "\(rows)×\(columns), accumulate \(accumulate)")
            }
        }
    }
}
