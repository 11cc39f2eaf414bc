import KumoCore
import KumoModel
import KumoParallel
import XCTest

@testable import KumoPlan

/// The planner on a mixture of experts: products of the routed rows, memory of the experts a rank
/// holds, and the all-to-all of expert parallelism.
final class MixturePlanTests: XCTestCase {
    private let flat = HardwareProfile.flat

    /// 8 experts of width 32, top-2: the same active parameters as a dense MLP of width 64, plus the router.
    private let moe = ModelConfig(
        vocabSize: 1000, hiddenSize: 64, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, maxPositionEmbeddings: 128, numLocalExperts: 8, numExpertsPerTok: 2)

    private func layout(_ c: ModelConfig, expert: Int = 1, ranks: Int = 1, zero: ZeROStage = .none) -> TrainingLayout {
        TrainingLayout(
            model: c, parallel: ParallelConfig(expert: expert, zeroStage: zero), ranks: ranks,
            batch: BatchShape(micro: 2, global: 2 * ranks, seqLen: 32))
    }

    /// At one flat rate the routed products cost what the dense MLP of the same active width does,
    /// plus the router's 64×8×64 product; FLOPs per token count the active experts and the router.
    func testRoutedProductsCostTheActiveExpertsAndTheRouter() {
        var dense = moe
        dense.numLocalExperts = 0
        dense.intermediateSize = 64
        let model = StepTimeModel(profile: flat, threads: 1, ranksPerHost: 1)
        let gap =
            model.microBatch(layout(moe), shard: .whole(moe)).gemm
            - model.microBatch(layout(dense), shard: .whole(dense)).gemm
        XCTAssertEqual(gap, 2 * 3 * 2 * 64 * 8 * 64 / 100e9, accuracy: 1e-15)
        XCTAssertEqual(moe.matmulParameterCount - dense.matmulParameterCount, 2 * 8 * 64)
    }

    /// Each rank holds its share of the experts: the weights, gradients and moments of the memory
    /// model are those of its shard's layout, and ZeRO-1 partitions over the ranks holding the same experts.
    func testExpertParallelRanksHoldTheirShareOfTheExperts() throws {
        let whole = ParameterLayout(moe).count
        var shard = ModelShard.whole(moe)
        shard.expertSize = 4
        let local = ParameterLayout(moe, shard: shard).count
        let perExpert = 3 * 64 * 32
        XCTAssertEqual(whole - local, 2 * 6 * perExpert)
        let m = try MemoryModel(layout(moe, expert: 4, ranks: 8, zero: .optimizer)).largest
        XCTAssertEqual(m.weights, 4 * local)
        XCTAssertEqual(m.gradients, 4 * local)
        XCTAssertEqual(m.optimizer, 8 * ZeROPartition(count: local, ranks: 2).range(of: 0).count)
    }

    /// Per block and micro-batch the routed rows (rows × k × hidden fp32) go out and back forward and
    /// their gradients backward: 4 exchanges, each rank sending (n−1)/n of them.
    func testExpertParallelAllToAllBytes() {
        let t = layout(moe, expert: 4, ranks: 4)
        let comm = CommVolume(t, ranksPerHost: 8, stageParameters: 1, stageLayers: 2, hasHead: true)
        let ep = comm.groups.first { $0.group == "ep" }
        let rows = 2.0 * 32 * 2 * 64 * 4
        XCTAssertEqual(ep?.bytesPerStep ?? 0, 2 * 4 * rows * 3 / 4, accuracy: 1e-9)
        XCTAssertEqual(ep?.overlapped, false)
    }
}
