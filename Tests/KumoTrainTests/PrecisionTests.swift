import KumoCore
import KumoData
import KumoModel
import XCTest

@testable import KumoTrain

/// `train.precision`: its default, the values refused, the memory it adds, and training in bf16
/// against fp32.
final class PrecisionTests: XCTestCase {
    private func config(_ overrides: [String]) throws -> RunConfig {
        try CheckpointFixture.config(["train.steps=5", "train.global_batch_size=4"] + overrides)
    }

    private func losses(_ c: RunConfig) throws -> [Double] {
        let trainer = try Trainer(config: c, stream: try TrainingData.make(c).stream, peakGFLOPs: 50)
        XCTAssertEqual(trainer.model.precision, c.precision)
        return try (0..<c.steps).map { _ in try trainer.trainStep().loss }
    }

    func testPrecisionDefaultsToFP32AndAcceptsBF16() throws {
        XCTAssertEqual(try config([]).precision, .fp32)
        XCTAssertEqual(try config(["train.precision=bf16"]).precision, .bf16)
    }

    func testUnknownPrecisionIsRefusedNamingTheKeyAndTheValidValues() {
        XCTAssertThrowsError(try config(["train.precision=fp16"])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("train.precision = \"fp16\""), message)
            XCTAssertTrue(message.contains("\"fp32\"") && message.contains("\"bf16\""), message)
        }
    }

    func testMemoryModelAddsTheBF16CopyOfTheParameters() throws {
        let fp32 = try config([]).memory(ranks: 1).largest
        let bf16 = try config(["train.precision=bf16"]).memory(ranks: 1).largest
        let parameters = ParameterLayout(try config([]).model).count
        XCTAssertEqual(fp32.weightsBF16, 0)
        XCTAssertEqual(bf16.weightsBF16, 2 * parameters)
        XCTAssertEqual(bf16.weights + bf16.gradients + bf16.optimizer, fp32.weights + fp32.gradients + fp32.optimizer)
        XCTAssertEqual(bf16.activations, fp32.activations)
    }

    func testBF16TrainingFollowsFP32WithinBF16Rounding() throws {
        let fp32 = try losses(try config([]))
        let bf16 = try losses(try config(["train.precision=bf16"]))
        let worst = zip(fp32, bf16).map { abs($0 - $1) / $0 }.max() ?? 0
        print("bf16 vs fp32 losses over 5 steps: worst relative difference \(worst)")
        XCTAssertLessThan(worst, 1e-2, "fp32 \(fp32), bf16 \(bf16)")
        XCTAssertGreaterThan(worst, 1e-7, "bf16 gave fp32's losses: its products did not run in bf16")
    }

    func testBF16WithFullRecomputeGivesTheSameLosses() throws {
        let kept = try losses(try config(["train.precision=bf16"]))
        let recomputed = try losses(try config(["train.precision=bf16", "train.recompute=full"]))
        XCTAssertEqual(kept, recomputed)
    }
}
