import KumoCore
import XCTest

@testable import KumoComm

final class BlockQuantizationTests: XCTestCase {
    /// Weights like a model's: mostly N(0, 0.02²), a stretch of norm weights at 1, zeros, and
    /// one outlier, over a length that ends in a partial block and spans two scale groups.
    private func weights(_ count: Int) -> [Float] {
        var rng = SeededRandom(seed: 5)
        var x = (0..<count).map { _ in Float(rng.normal() * 0.02) }
        for i in 1000..<1256 { x[i] = 1 }
        for i in 3000..<3600 { x[i] = 0 }
        x[count * 7 / 8] = -3
        return x
    }

    func testInt8BlocksStayWithinHalfTheirEffectiveScaleAndTakeAQuarterOfTheBytes() {
        let count = 256 * 300 + 77
        let x = weights(count)
        var bytes = [UInt8](repeating: 0, count: Int8Blocks.encodedBytes(count))
        var y = [Float](repeating: .nan, count: count)
        bytes.withUnsafeMutableBytes { Int8Blocks.encode(x, count: count, into: $0.baseAddress!) }
        bytes.withUnsafeBytes { Int8Blocks.decode($0.baseAddress!, count: count, into: &y) }
        // Bound per element: absmax/254 + G/510, G the largest block scale of its group of 256 blocks.
        let blockMax = stride(from: 0, to: count, by: 256).map { x[$0..<min(count, $0 + 256)].map(abs).max()! }
        let groupMax = stride(from: 0, to: blockMax.count, by: 256).map {
            blockMax[$0..<min(blockMax.count, $0 + 256)].max()! / 127
        }
        var worst = 0.0
        for i in 0..<count {
            let b = i / 256
            let bound = Double(blockMax[b] / 254 + groupMax[b / 256] / 510) * (1 + 1e-5)
            worst = max(worst, Double(abs(y[i] - x[i])) / bound)
        }
        XCTAssertLessThanOrEqual(worst, 1, "largest error / bound \(worst)")
        XCTAssertEqual(Array(y[3072..<3584]), [Float](repeating: 0, count: 512), "all-zero blocks decode to zeros")
        XCTAssertEqual(y[1100], 1, accuracy: 1 / 254)
        let ratio = Double(bytes.count) / Double(4 * count)
        XCTAssertLessThanOrEqual(ratio, 0.252, "int8 bytes / fp32 bytes \(ratio)")
        // The quantization is not the identity: most N(0, 0.02²) values move.
        XCTAssertGreaterThan(zip(x, y).filter { $0 != $1 }.count, count / 2)
    }

    func testBFloat16RoundsToNearestWithinTwoToTheMinusEightRelative() {
        let count = 5000
        let x = weights(count) + [1 + 1.5 / 256, 1 + 0.5 / 128, -2.7e-20]
        var bytes = [UInt8](repeating: 0, count: 2 * x.count)
        var y = [Float](repeating: .nan, count: x.count)
        bytes.withUnsafeMutableBytes { BFloat16.encode(x, count: x.count, into: $0.baseAddress!) }
        bytes.withUnsafeBytes { BFloat16.decode($0.baseAddress!, count: x.count, into: &y) }
        let worst = zip(x, y).map { $0 == 0 ? Double(abs($1)) : Double(abs($1 - $0) / abs($0)) }.max()!
        XCTAssertLessThanOrEqual(worst, 1.0 / 256, "largest relative error \(worst)")
        // bf16 steps by 2⁻⁷ near 1: 1 + 0.75·2⁻⁷ rounds up to 1 + 2⁻⁷.
        XCTAssertEqual(y[count], 1 + 1 / 128)
        XCTAssertEqual(y[count + 1], 1, "1 + 2⁻⁸ is a tie and rounds to the even 1")
    }

    func testCodecsSendTheBytesTheirFormatsSay() {
        XCTAssertEqual(GatherCodec.fp32.encodedBytes(1000), 4000)
        XCTAssertEqual(GatherCodec.bf16.encodedBytes(1000), 2000)
        // 1000 values, 4 block codes, 1 group scale.
        XCTAssertEqual(GatherCodec.int8.encodedBytes(1000), 1000 + 4 + 4)
    }
}
