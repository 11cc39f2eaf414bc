import KumoCore
import XCTest

@testable import KumoModel

/// Pipeline stages run one after another in process equal the whole model, under each recompute
/// (under `stage` both stages re-run their forward before each backward: no backward directly
/// follows its own forward here).
final class PipelineStageTests: XCTestCase {
    let config = ModelConfig(
        vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 4, numAttentionHeads: 4,
        numKeyValueHeads: 2)

    func testTwoStagesWithTwoSlotsInFlightGiveTheWholeModelsLossAndGradients() throws {
        for recompute in ActivationRecompute.allCases { try checkTwoStages(recompute) }
    }

    /// Stages with `recompute` against the whole model without.
    private func checkTwoStages(_ recompute: ActivationRecompute) throws {
        let (batch, seq) = (2, 8)
        let rows = batch * seq
        var rng = SeededRandom(seed: 5)
        let micro = (0..<2).map { _ in (0..<rows).map { _ in Int32(rng.next() % 64) } }
        let targets = (0..<2).map { _ in (0..<rows).map { _ in Int32(rng.next() % 64) } }
        let scale: Float = 1 / Float(2 * rows)

        let whole = try LlamaModel(config: config)
        whole.initializeWeights(seed: 3)
        var wholeLoss = 0.0
        for i in 0..<2 {
            wholeLoss +=
                whole.lossAndBackward(
                    inputs: micro[i], targets: targets[i], batch: batch, seqLen: seq, gradScale: scale
                ).lossSum
        }

        let first = try LlamaModel(
            config: config, shard: ModelShard(layers: 0..<3, hasEmbedding: true, hasHead: false))
        let last = try LlamaModel(config: config, shard: ModelShard(layers: 3..<4, hasEmbedding: false, hasHead: true))
        for stage in [first, last] {
            stage.initializeWeights(seed: 3)
            stage.recompute = recompute
        }
        let h = config.hiddenSize
        var stagedLoss = 0.0
        // Both micro-batches forward (two slots in flight), then both backward, as GPipe does.
        for i in 0..<2 {
            let out = first.forward(slot: i, tokens: micro[i], batch: batch, seqLen: seq)
            last.stageInput(slot: i, batch: batch, seqLen: seq).update(from: out, count: rows * h)
            let logits = last.forward(slot: i, tokens: nil, batch: batch, seqLen: seq)
            stagedLoss +=
                CrossEntropyKernel.forwardBackward(
                    logits: logits, targets: targets[i], rows: rows, vocab: config.vocabSize, gradScale: scale
                ).lossSum
        }
        for i in 0..<2 {
            let dInput = last.backward(slot: i, tokens: nil)
            first.hiddenGradient(slot: i).update(from: dInput, count: rows * h)
            micro[i].withUnsafeBufferPointer { _ = first.backward(slot: i, tokens: $0.baseAddress!) }
        }
        XCTAssertEqual(stagedLoss, wholeLoss, "recompute \(recompute): loss")
        var params = [Float](repeating: .nan, count: whole.layout.count)
        var grads = [Float](repeating: .nan, count: whole.layout.count)
        for stage in [first, last] {
            stage.layout.placeShard(stage.params.pointer, into: &params, wholeLayout: whole.layout)
            stage.layout.placeShard(stage.grads.pointer, into: &grads, wholeLayout: whole.layout)
        }
        XCTAssertEqual(params, Array(UnsafeBufferPointer(start: whole.params.pointer, count: whole.params.count)))
        let wholeGrads = Array(UnsafeBufferPointer(start: whole.grads.pointer, count: whole.grads.count))
        let maxDiff = zip(grads, wholeGrads).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertEqual(maxDiff, 0, "recompute \(recompute): max gradient difference \(maxDiff)")
    }
}
