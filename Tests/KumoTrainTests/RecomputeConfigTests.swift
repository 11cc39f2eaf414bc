import Foundation
import KumoModel
import XCTest

@testable import KumoTrain

/// `train.recompute`: its default, the values refused, and the memory estimate it changes.
final class RecomputeConfigTests: XCTestCase {
    private func load(_ overrides: [String]) throws -> RunConfig {
        try RunConfig.load(path: nil, overrides: ["model.preset=tiny", "data.synthetic=true"] + overrides)
    }

    func testRecomputeDefaultsToNoneAndAcceptsFullAndStage() throws {
        XCTAssertEqual(try load([]).recompute, .none)
        XCTAssertEqual(try load(["train.recompute=full"]).recompute, .full)
        XCTAssertEqual(try load(["train.recompute=stage"]).recompute, .stage)
    }

    func testUnknownRecomputeValueIsRefusedNamingTheKey() {
        XCTAssertThrowsError(try load(["train.recompute=selective"])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("train.recompute = \"selective\""), message)
            XCTAssertTrue(
                message.contains("\"none\"") && message.contains("\"full\"") && message.contains("\"stage\""), message)
        }
    }

    func testMemoryModelCountsOneBlockOfActivationsUnderFullRecompute() throws {
        let none = try load(["train.seq_length=512", "train.micro_batch_size=2"]).memory(ranks: 1).largest
        let full = try load(["train.seq_length=512", "train.micro_batch_size=2", "train.recompute=full"])
            .memory(ranks: 1).largest
        let model = try XCTUnwrap(ModelPreset.config("tiny"))
        XCTAssertEqual(none.activations, LlamaModel.activationBytes(model, batch: 2, seqLen: 512))
        XCTAssertEqual(full.activations, LlamaModel.activationBytes(model, batch: 2, seqLen: 512, recompute: .full))
        XCTAssertEqual(full.weights + full.gradients + full.optimizer, none.weights + none.gradients + none.optimizer)
        XCTAssertLessThan(full.total, none.total)
    }
}
