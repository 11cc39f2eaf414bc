import Foundation
import KumoCore
import KumoModel
import XCTest

@testable import KumoInterop

/// Kumo's GGUF output read by transformers' GGUF loader (which undoes llama.cpp's Q/K row
/// order on its own), and read back by Kumo.
final class GGUFWriterTests: XCTestCase {
    func testGGUFExportMatchesTransformersLogitsAndReadsBackIdentically() throws {
        Threads.set(1)
        let dir = try Reference.temporaryDirectory(for: self)
        let model = try Reference.randomModel(tied: false, kvHeads: 2)
        try GGUFWriter.write(model, to: dir + "/model.gguf")
        let maxDiff = try Reference.maxLogitDifference(
            model, transformersArgs: ["--model", dir, "--gguf-file", "model.gguf"], in: dir)
        print("GGUF export: max logit difference \(maxDiff)")
        XCTAssertLessThan(maxDiff, 1e-4, "max |kumo − transformers| logit difference \(maxDiff)")

        let back = try loadModel(path: dir + "/model.gguf")
        XCTAssertEqual(back.config, model.config)
        let differing = (0..<model.layout.count).filter { back.params[$0] != model.params[$0] }.count
        XCTAssertEqual(differing, 0, "\(differing) parameters differ after a GGUF round trip")
    }
}
