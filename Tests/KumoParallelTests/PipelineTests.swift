import KumoModel
import XCTest

@testable import KumoParallel

/// The stage cut and the order of each stage's forwards and backwards.
final class PipelineTests: XCTestCase {
    /// A six-block model whose embedding and head each cost `vocab` × 64 parameters.
    private func model(vocab: Int) -> ModelConfig {
        ModelConfig(
            vocabSize: vocab, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 6, numAttentionHeads: 4)
    }

    func testStagesAreCutEvenlyWhenEmbeddingAndHeadAreCheap() throws {
        let plan = try PipelinePlan(model(vocab: 8), stages: 3, seqLen: 32)
        XCTAssertEqual(plan.stages, [0..<2, 2..<4, 4..<6])
        let tiny = try XCTUnwrap(ModelPreset.config("tiny"))
        XCTAssertEqual(try PipelinePlan(tiny, stages: 2, seqLen: 32).stages, [0..<2, 2..<4])
        XCTAssertEqual(try PipelinePlan(tiny, stages: 4, seqLen: 32).stages, [0..<1, 1..<2, 2..<3, 3..<4])
    }

    func testEmbeddingAndHeadCostMoveBlocksToTheMiddleStage() throws {
        // A block costs 41,088 parameters + 2·32·64 attention = 45,184; 2,118 × 64 ≈ 3 blocks each for the
        // embedding and the head: the first and last stage keep one block, the middle one takes four.
        let plan = try PipelinePlan(model(vocab: 2118), stages: 3, seqLen: 32)
        XCTAssertEqual(plan.stages, [0..<1, 1..<5, 5..<6])
        XCTAssertEqual(plan.shard(0), ModelShard(layers: 0..<1, hasEmbedding: true, hasHead: false))
        XCTAssertEqual(plan.shard(1), ModelShard(layers: 1..<5, hasEmbedding: false, hasHead: false))
        XCTAssertEqual(plan.shard(2), ModelShard(layers: 5..<6, hasEmbedding: false, hasHead: true))
    }

    func testMoreStagesThanBlocksIsRefusedSayingWhatWorks() {
        XCTAssertThrowsError(try PipelinePlan(model(vocab: 8), stages: 7, seqLen: 32)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("parallel.pipeline = 7"), message)
            XCTAssertTrue(message.contains("use parallel.pipeline between 1 and 6"), message)
        }
    }

    func testGPipeRunsEveryForwardThenEveryBackward() {
        for stage in 0..<3 {
            let ops = PipelineSchedule.gpipe.ops(stage: stage, stages: 3, microBatches: 3)
            XCTAssertEqual(ops.map(\.description), ["F0", "F1", "F2", "B0", "B1", "B2"], "stage \(stage)")
            XCTAssertEqual(PipelineSchedule.gpipe.slots(stage: stage, stages: 3, microBatches: 3), 3)
        }
    }

    func testOneForwardOneBackwardWarmsUpAlternatesAndCoolsDown() {
        let s = PipelineSchedule.oneForwardOneBackward
        let order = (0..<4).map {
            s.ops(stage: $0, stages: 4, microBatches: 6).map(\.description).joined(separator: " ")
        }
        XCTAssertEqual(
            order,
            [
                "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5",
                "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5",
                "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5",
                "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5",
            ])
        // Fewer micro-batches than stages: the warm-up is cut short.
        XCTAssertEqual(s.ops(stage: 0, stages: 4, microBatches: 2).map(\.description), ["F0", "F1", "B0", "B1"])
    }

    func testEveryScheduleHoldsNoMoreMicroBatchesThanItsSlots() {
        for schedule in PipelineSchedule.allCases {
            for (stages, m) in [(2, 4), (4, 4), (4, 8), (3, 1)] {
                for stage in 0..<stages {
                    let ops = schedule.ops(stage: stage, stages: stages, microBatches: m)
                    var inFlight = Set<Int>()
                    var most = 0
                    for op in ops {
                        switch op {
                        case .forward(let i): inFlight.insert(i)
                        case .backward(let i): XCTAssertNotNil(inFlight.remove(i), "\(schedule) B\(i) before F\(i)")
                        }
                        most = max(most, inFlight.count)
                    }
                    let label = "\(schedule) stage \(stage) of \(stages), \(m) micro-batches"
                    XCTAssertEqual(ops.count, 2 * m, label)
                    XCTAssertTrue(inFlight.isEmpty, label)
                    XCTAssertEqual(most, schedule.slots(stage: stage, stages: stages, microBatches: m), label)
                    // Backwards run in micro-batch order, so the last one is micro-batch m − 1.
                    let backwards = ops.compactMap { op -> Int? in
                        if case .backward(let i) = op { return i } else { return nil }
                    }
                    XCTAssertEqual(backwards, Array(0..<m), label)
                }
            }
        }
    }
}
