import KumoComm
import KumoCore
import KumoModel
import XCTest

@testable import KumoParallel

final class WholeModelTests: XCTestCase {
    func testOneRankGathersItsWholeModelUnchanged() throws {
        let c = ModelConfig(
            vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numHiddenLayers: 2, numAttentionHeads: 2)
        let layout = ParameterLayout(c)
        let params = (0..<layout.count).map { Float($0) * 0.5 }
        let whole = try XCTUnwrap(WholeModel.gather(params, layout: layout, world: LocalCommunicator()))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: whole.pointer, count: whole.count)), params)
    }
}
