import KumoComm
import KumoModel
import XCTest

@testable import KumoParallel

/// Sharded gradients on one rank: backward writes into the scratch, buckets are copied out and
/// reduce-scattered into the shard, and the shard ends up holding what a whole gradient buffer
/// accumulates over the same micro-batches.
final class ShardedGradientsTests: XCTestCase {
    private func config(tied: Bool) -> ModelConfig {
        ModelConfig(
            vocabSize: 96, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 3, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 16, tieWordEmbeddings: tied)
    }

    /// Runs `micro` micro-batches of forward and backward on `model` (seeded tokens).
    private func backward(_ model: LlamaModel, micro: Int, each: () -> Void = {}, after: () -> Void = {}) {
        var rng = UInt64(42)
        for _ in 0..<micro {
            let tokens: [Int32] = (0..<16).map { _ in
                rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int32((rng >> 33) % 96)
            }
            each()
            _ = model.lossAndBackward(
                inputs: tokens, targets: Array(tokens.dropFirst()) + [-100], batch: 2, seqLen: 8, gradScale: 0.1)
            after()
        }
    }

    func testShardAccumulatesTheWholeGradientsOverMicroBatches() throws {
        for tied in [false, true] {
            for bucketBytes in [4 * 1500, 4 * 40_000, 4 * 10_000_000] {
                let whole = try LlamaModel(config: config(tied: tied))
                whole.initializeWeights(seed: 3)
                backward(whole, micro: 3)

                let model = try LlamaModel(config: config(tied: tied), wholeGradients: false)
                model.initializeWeights(seed: 3)
                XCTAssertEqual(model.grads.count, 0)
                let layout = model.layout
                let sharded = ShardedGradients(
                    layout: layout, partition: ZeROPartition(count: layout.count, ranks: 1),
                    group: LocalCommunicator(), replicas: nil, bucketBytes: bucketBytes)
                model.gradientMemory = sharded.memory
                model.gradientsReady = sharded.gradientsReady
                sharded.beginStep()
                backward(model, micro: 3, each: sharded.beginPass) { sharded.finishPass(lastOfStep: true) }

                let reference = whole.grads.array
                let scale = reference.map(abs).max() ?? 0
                let error = zip(sharded.shard.array, reference).map { abs($0 - $1) }.max() ?? .infinity
                let label = "tied \(tied), buckets of \(bucketBytes) bytes"
                XCTAssertGreaterThan(scale, 0, label)
                XCTAssertLessThanOrEqual(error, 1e-6 * scale, "\(label): max gradient difference \(error)")
                // Scratch: the largest ready range (and the tied embedding's own) plus at most two buckets.
                let ready = GradientBuckets.readyOrder(layout).map(\.count)
                let scratch = tied ? ready.dropLast().max()! + ready.last! : ready.max()!
                let staging = min(2, sharded.buckets.ranges.count) * sharded.buckets.ranges.map(\.count).max()!
                XCTAssertEqual(sharded.scratchBytes, 4 * (scratch + staging), label)
            }
        }
    }
}
