import KumoComm
import KumoModel
import XCTest

@testable import KumoParallel

/// `parallelize` on one rank and the combinations `ParallelConfig.validate` refuses.
final class ParallelizeTests: XCTestCase {
    private let batch = BatchShape(micro: 2, global: 8, seqLen: 32)

    private func tiny() throws -> ModelConfig { try XCTUnwrap(ModelPreset.config("tiny")) }

    func testOneRankHoldsTheWholeModelAndShardsNothing() throws {
        var prepared = 0
        let plan = try parallelize(
            try tiny(), world: LocalCommunicator(), config: ParallelConfig(zeroStage: .optimizer), batch: batch
        ) { _ in prepared += 1 }
        XCTAssertEqual(prepared, 1)
        XCTAssertEqual(plan.model.layout.shard, .whole(try tiny()))
        XCTAssertEqual(plan.accumulationSteps, 4)
        XCTAssertEqual(plan.zero.ranks, 1)
        XCTAssertEqual(plan.optimizerShard, 0..<plan.model.layout.count)
        XCTAssertEqual(plan.ownedParameters, plan.optimizerShard)
        XCTAssertNil(plan.pipeline)
        XCTAssertNil(plan.tensorGradients)
        XCTAssertNil(plan.shardedParameters)
        XCTAssertTrue(plan.writesParameters && plan.writesOptimizerState)
    }

    func testZeROStagesShardEachWhatTheOneBeforeDidAndOneThingMore() {
        XCTAssertEqual(ZeROStage.allCases.map(\.rawValue), [0, 1, 2, 3])
        XCTAssertEqual(ZeROStage.allCases.map(\.shardsOptimizer), [false, true, true, true])
        XCTAssertEqual(ZeROStage.allCases.map(\.shardsGradients), [false, false, true, true])
        XCTAssertEqual(ZeROStage.allCases.map(\.shardsParameters), [false, false, false, true])
    }

    func testRefusedCombinationsNameTheirKeys() throws {
        func message(_ config: ParallelConfig) throws -> String {
            do {
                try config.validate(try tiny(), batch: batch)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(try message(ParallelConfig(tensor: 2, zeroStage: .optimizer)), "no error")
        XCTAssertTrue(try message(ParallelConfig(tensor: 2, zeroStage: .gradients)).contains("parallel.tensor = 2"))
        XCTAssertTrue(try message(ParallelConfig(pipeline: 2, zeroStage: .parameters)).contains("is refused"))
        XCTAssertTrue(try message(ParallelConfig(quantizedAllGather: .int8)).contains("zero_stage = 3"))
        XCTAssertTrue(try message(ParallelConfig(bucketMiB: 0)).contains("parallel.bucket_mib = 0.0: must be positive"))
    }

    func testTheWorldMustSplitIntoTheMeshAndTheBatchOverItsDataRanks() throws {
        let global = BatchShape(micro: 3, global: 8, seqLen: 32)
        XCTAssertThrowsError(
            try parallelize(try tiny(), world: LocalCommunicator(), config: ParallelConfig(), batch: global) { _ in }
        ) { XCTAssertTrue("\($0)".contains("must be a multiple of train.micro_batch_size"), "\($0)") }
        XCTAssertThrowsError(
            try parallelize(try tiny(), world: LocalCommunicator(), config: ParallelConfig(tensor: 2), batch: batch) {
                _ in
            }
        ) { XCTAssertTrue("\($0)".contains("launch a multiple of 2 ranks"), "\($0)") }
    }

    func testEveryStageShardHasTheTensorSize() throws {
        let shards = try ParallelConfig(tensor: 2, pipeline: 2).stageShards(try tiny(), seqLen: 32)
        XCTAssertEqual(shards.map(\.layers), [0..<2, 2..<4])
        XCTAssertEqual(shards.map(\.tensorSize), [2, 2])
    }
}
