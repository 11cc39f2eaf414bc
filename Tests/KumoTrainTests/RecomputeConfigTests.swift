import Foundation
import KumoModel
import XCTest

@testable import KumoTrain

/// `train.recompute`: its default, the values refused, and the memory estimate it changes.
final class RecomputeConfigTests: XCTestCase {
    private func load(_ overrides: [String]) throws -> RunConfig {
        try RunConfig.load(path: nil, overrides: ["model.preset=tiny", "data.synthetic=true"] + overrides)
    }

    func testRecomputeDefaultsToNoneAndAcceptsFull() throws {
        XCTAssertEqual(try load([]).recompute, .none)
        XCTAssertEqual(try load(["train.recompute=full"]).recompute, .full)
    }

    func testUnknownRecomputeValueIsRefusedNamingTheKey() {
        XCTAssertThrowsError(try load(["train.recompute=selective"])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("train.recompute = \"selective\""), message)
            XCTAssertTrue(message.contains("\"none\"") && message.contains("\"full\""), message)
        }
    }

    func testMemoryEstimateCountsOneBlockOfActivationsUnderFullRecompute() throws {
        let none = MemoryEstimate(try load(["train.seq_length=512", "train.micro_batch_size=2"]))
        let full = MemoryEstimate(
            try load(["train.seq_length=512", "train.micro_batch_size=2", "train.recompute=full"]))
        let model = try XCTUnwrap(ModelPreset.config("tiny"))
        XCTAssertEqual(none.activationBytes, LlamaModel.activationBytes(model, batch: 2, seqLen: 512))
        XCTAssertEqual(full.activationBytes, LlamaModel.activationBytes(model, batch: 2, seqLen: 512, recompute: .full))
        XCTAssertEqual(full.stateBytes, none.stateBytes)
        XCTAssertLessThan(full.totalBytes, none.totalBytes)
    }
}
