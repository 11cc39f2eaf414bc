import KumoCore
import KumoModel
import KumoParallel
import XCTest

@testable import KumoPlan

/// What the planner counts for `train.recompute = "stage"`: which micro-batches re-run their stage's
/// forward, and the products and collectives that adds.
final class StageRecomputePlanTests: XCTestCase {
    private let model = ModelConfig(
        vocabSize: 1000, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, maxPositionEmbeddings: 128)

    private func layout(_ parallel: ParallelConfig, ranks: Int, global: Int, _ recompute: ActivationRecompute)
        -> TrainingLayout
    {
        TrainingLayout(
            model: model, parallel: parallel, ranks: ranks, batch: BatchShape(micro: 1, global: global, seqLen: 32),
            recompute: recompute)
    }

    /// Under 1F1B only the last stage runs each backward right after its own forward; under GPipe
    /// only a single micro-batch does; on one stage every backward follows its forward.
    func testReforwardsAreTheBackwardsNotDirectlyAfterTheirForward() {
        let oneF = PipelineSchedule.oneForwardOneBackward
        XCTAssertEqual((0..<4).map { oneF.reforwards(stage: $0, stages: 4, microBatches: 8) }, [8, 8, 8, 0])
        XCTAssertEqual(PipelineSchedule.gpipe.reforwards(stage: 3, stages: 4, microBatches: 8), 8)
        XCTAssertEqual(PipelineSchedule.gpipe.reforwards(stage: 0, stages: 4, microBatches: 1), 0)
        let pipelined = layout(ParallelConfig(pipeline: 2), ranks: 2, global: 4, .stage)
        XCTAssertEqual([0, 1].map { pipelined.reforwards(stage: $0) }, [4, 0])
        XCTAssertEqual(layout(ParallelConfig(pipeline: 2), ranks: 2, global: 4, .full).reforwards(stage: 0), 0)
        XCTAssertEqual(layout(ParallelConfig(), ranks: 1, global: 4, .stage).reforwards(stage: 0), 0)
    }

    /// A re-run adds one forward product of each block projection (not the head) and, under tensor
    /// parallelism, the two forward collectives of each block: half of full recompute's extra
    /// traffic when half the micro-batches are re-run.
    func testReforwardsAddTheBlocksForwardProductsAndCollectives() {
        let profile = HardwareProfile.presets["frontier"]!
        let time = StepTimeModel(profile: profile, threads: 1, ranksPerHost: 8)
        let t = layout(ParallelConfig(tensor: 2), ranks: 2, global: 4, .stage)
        let shard = ModelShard(tensorSize: 2, layers: 0..<2, hasEmbedding: true, hasHead: true)
        let none = time.microBatch(t, shard: shard).gemm
        let all = time.microBatch(t, shard: shard, reforwards: 4).gemm
        let half = time.microBatch(t, shard: shard, reforwards: 2).gemm
        XCTAssertGreaterThan(all, none)
        XCTAssertEqual(half - none, (all - none) / 2, accuracy: 1e-12 * all)
        var full = t
        full.recompute = .full
        let tp = { (t: TrainingLayout, r: Int) in
            CommVolume(t, ranksPerHost: 8, stageParameters: 1, stageLayers: 2, hasHead: true, reforwards: r).groups
                .first { $0.group == "tp" }!.bytesPerStep
        }
        let rowBytes = 4.0 * 32 * 64
        // 4 micro-batches × 2 blocks × 4 all-reduces of 2·(1/2)·rowBytes, plus 2 per re-run block.
        XCTAssertEqual(tp(t, 0), 4 * 2 * 4 * rowBytes)
        XCTAssertEqual(tp(t, 2), (4 * 2 * 4 + 2 * 2 * 2) * rowBytes)
        XCTAssertEqual(tp(full, 0), tp(t, 4))
    }

    /// With p − stage micro-batches in flight, stage recompute keeps one stage input (and the
    /// logits) per micro-batch, so the first stage of a deep pipeline holds far less than under full.
    func testStageRecomputeShrinksTheFirstStagesActivations() throws {
        let parallel = ParallelConfig(pipeline: 2)
        let bytes = { (mode: ActivationRecompute) in
            try MemoryModel(self.layout(parallel, ranks: 2, global: 8, mode), runtimeBytes: 0).stages[0].activations
        }
        let shard = try parallel.stageShards(model, seqLen: 32)[0]
        XCTAssertEqual(
            try bytes(.stage),
            LlamaModel.activationBytes(model, shard: shard, batch: 1, seqLen: 32, recompute: .stage, slots: 2))
        XCTAssertLessThan(try bytes(.stage), try bytes(.full))
        XCTAssertLessThan(try bytes(.full), try bytes(.none))
    }
}
