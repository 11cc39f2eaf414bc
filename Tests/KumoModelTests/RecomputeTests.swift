import KumoCore
import XCTest

@testable import KumoModel

/// Full activation recomputation: the same loss and gradients, bit for bit, from fewer buffers.
final class RecomputeTests: XCTestCase {
    override func setUp() { Threads.set(2) }

    private func config(parallel: Bool) -> ModelConfig {
        ModelConfig(
            vocabSize: 41, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 3, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 16, parallelLayers: parallel)
    }

    /// A seeded model with `recompute`, after one lossAndBackward on a fixed batch: its loss sum
    /// and gradients.
    private func lossAndGradients(
        _ c: ModelConfig, _ recompute: ActivationRecompute, batch: Int, seq: Int,
        hooks: (LlamaModel) -> Void = { _ in }
    ) throws -> (model: LlamaModel, lossSum: Double, grads: [Float]) {
        let model = try LlamaModel(config: c)
        model.recompute = recompute
        model.initializeWeights(seed: 5, std: 0.2)
        hooks(model)
        var rng = SeededRandom(seed: 6)
        let inputs = (0..<batch * seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let targets = (0..<batch * seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        model.zeroGrads()
        let result = model.lossAndBackward(
            inputs: inputs, targets: targets, batch: batch, seqLen: seq, gradScale: 1 / Float(batch * seq))
        return (model, result.lossSum, model.grads.array)
    }

    /// Index and values of the first gradient that differs, for the failure message.
    private func firstDifference(_ a: [Float], _ b: [Float]) -> String {
        guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return "none" }
        return "index \(i): \(a[i]) vs \(b[i]) (difference \(a[i] - b[i]))"
    }

    private func checkRecomputeMatches(parallel: Bool) throws {
        let c = config(parallel: parallel)
        let kind = parallel ? "parallel_layers" : "sequential"
        let kept = try lossAndGradients(c, .none, batch: 2, seq: 9)
        let recomputed = try lossAndGradients(c, .full, batch: 2, seq: 9)
        XCTAssertEqual(recomputed.lossSum, kept.lossSum, "\(kind) loss sum")
        XCTAssertEqual(kept.grads.count, ParameterLayout(c).count)
        XCTAssertTrue(
            recomputed.grads == kept.grads,
            "\(kind): first differing gradient: \(firstDifference(recomputed.grads, kept.grads))")
        XCTAssertTrue(kept.grads.contains { $0 != 0 }, "\(kind): gradients are all zero")
        let stage = try lossAndGradients(c, .stage, batch: 2, seq: 9)
        XCTAssertEqual(stage.lossSum, kept.lossSum, "\(kind) stage loss sum")
        XCTAssertTrue(stage.grads == kept.grads, "\(kind) stage: \(firstDifference(stage.grads, kept.grads))")
        for (model, mode) in [(kept.model, ActivationRecompute.none), (recomputed.model, .full), (stage.model, .stage)]
        {
            XCTAssertEqual(
                model.activationBytesAllocated, LlamaModel.activationBytes(c, batch: 2, seqLen: 9, recompute: mode),
                "\(kind), recompute \(mode): allocated bytes vs the formula")
        }
        XCTAssertLessThan(recomputed.model.activationBytesAllocated, kept.model.activationBytesAllocated, kind)
    }

    func testSequentialBlocksRecomputeGivesBitIdenticalLossAndGradients() throws {
        try checkRecomputeMatches(parallel: false)
    }

    func testParallelLayersBlocksRecomputeGivesBitIdenticalLossAndGradients() throws {
        try checkRecomputeMatches(parallel: true)
    }

    /// Hooks in the manner of ZeRO-3: a stage's parameters are present only between its
    /// before-hook and the next one (all others zeroed). Recompute must read a block's parameters
    /// after its beforeBackward, or its gradients come out wrong.
    func testRecomputeRunsAfterTheBeforeBackwardGatherOfItsBlock() throws {
        let c = config(parallel: false)
        let withGathers = installGatherHooks
        let reference = try lossAndGradients(c, .none, batch: 2, seq: 9)
        for mode in ActivationRecompute.allCases {
            let gathered = try lossAndGradients(c, mode, batch: 2, seq: 9, hooks: withGathers)
            XCTAssertEqual(gathered.lossSum, reference.lossSum, "recompute \(mode)")
            XCTAssertTrue(
                gathered.grads == reference.grads,
                "recompute \(mode): first differing gradient: \(firstDifference(gathered.grads, reference.grads))")
        }
    }

    /// Attention keeps O(T) per head (its logsumexp), so doubling the sequence doubles activation memory.
    func testActivationBytesGrowLinearlyWithSequenceLength() {
        let c = config(parallel: false)
        for mode in ActivationRecompute.allCases {
            let short = LlamaModel.activationBytes(c, batch: 2, seqLen: 512, recompute: mode)
            XCTAssertEqual(LlamaModel.activationBytes(c, batch: 2, seqLen: 1024, recompute: mode), 2 * short, "\(mode)")
        }
    }

    /// Under recompute the activations of one block are allocated instead of every block's.
    func testRecomputeFormulaKeepsOneBlockOfActivations() throws {
        let c = config(parallel: false)
        let none = LlamaModel.activationBytes(c, batch: 2, seqLen: 9, recompute: .none)
        let full = LlamaModel.activationBytes(c, batch: 2, seqLen: 9, recompute: .full)
        let oneLayer = ModelConfig(
            vocabSize: 41, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 1, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 16)
        // Each further layer adds its block's activations and one residual-stream buffer (kept either way).
        let perLayer =
            (LlamaModel.activationBytes(c, batch: 2, seqLen: 9)
                - LlamaModel.activationBytes(oneLayer, batch: 2, seqLen: 9))
            / 2
        let perBlock = perLayer - 4 * 2 * 9 * 32
        XCTAssertGreaterThan(perBlock, 0)
        XCTAssertEqual(none - full, 2 * perBlock, "3 layers: two blocks' activations fewer")
    }
}
