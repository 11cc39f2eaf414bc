import Foundation
import KumoCore
import XCTest

@testable import KumoModel

/// The mixture-of-experts feed-forward: finite differences of the whole model's loss (cross-entropy
/// plus the load-balancing and z-losses) for every tensor, and a one-expert mixture against the
/// dense model it equals.
final class MixtureOfExpertsTests: XCTestCase {
    override func setUp() { Threads.set(1) }

    private func config(experts: Int = 4, k: Int = 2, parallel: Bool = false) -> ModelConfig {
        ModelConfig(
            vocabSize: 29, hiddenSize: 16, intermediateSize: 12, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 16, parallelLayers: parallel, numLocalExperts: experts,
            numExpertsPerTok: k, routerAuxLossCoef: 0.3, routerZLossCoef: 0.05, outputRouterLogits: true)
    }

    private func tokens(_ n: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }

    /// L = mean cross-entropy + aux coefficient · load-balancing loss + z coefficient · z-loss,
    /// against finite differences for a sample of every tensor (router and each expert included).
    private func checkModelGradients(parallel: Bool) throws {
        let c = config(parallel: parallel)
        let model = try LlamaModel(config: c)
        model.initializeWeights(seed: 41, std: 0.3)
        let (batch, seq) = (2, 6)
        let inputs = tokens(batch * seq, vocab: c.vocabSize, seed: 42)
        let targets = tokens(batch * seq, vocab: c.vocabSize, seed: 43)
        let loss = { () -> Double in
            let logits = model.forward(tokens: inputs, batch: batch, seqLen: seq)
            let stats = model.routerStatistics()!
            return referenceCrossEntropy(logits, targets: targets, vocab: c.vocabSize) + c.routerAuxLossCoef
                * stats.auxLoss + c.routerZLossCoef * stats.zLoss
        }
        _ = loss()
        let stats = try XCTUnwrap(model.routerStatistics())
        XCTAssertEqual(stats.load.reduce(0, +), c.numHiddenLayers * batch * seq * c.numExpertsPerTok)
        XCTAssertGreaterThan(stats.auxLoss, 0.9, "Switch's loss is at least 1 at any routing")
        model.zeroGrads()
        _ = model.lossAndBackward(
            inputs: inputs, targets: targets, batch: batch, seqLen: seq, gradScale: 1 / Float(batch * seq))
        let grads = model.grads.array
        let names = model.layout.tensors.map(\.name)
        XCTAssertTrue(names.contains("model.layers.1.block_sparse_moe.gate.weight"))
        XCTAssertTrue(names.contains("model.layers.0.block_sparse_moe.experts.3.w2.weight"))
        XCTAssertFalse(names.contains { $0.contains("mlp.") })
        let gc = GradientCheck(samples: 24)
        for t in model.layout.tensors {
            gc.check(
                t.name, x: model.params.pointer + t.offset, count: t.count,
                analytic: Array(grads[t.offset..<t.offset + t.count]), loss: loss)
        }
    }

    func testMixtureModelGradientsMatchFiniteDifferences() throws { try checkModelGradients(parallel: false) }
    func testParallelLayersMixtureGradientsMatchFiniteDifferences() throws { try checkModelGradients(parallel: true) }

    /// The router losses' own gradient: with a zero cross-entropy gradient (gradScale 0) only the
    /// routers receive gradient, and it matches finite differences of coef·aux + z_coef·z.
    func testRouterLossGradientMatchesFiniteDifferences() throws {
        let c = config()
        let model = try LlamaModel(config: c)
        model.initializeWeights(seed: 7, std: 0.5)
        let inputs = tokens(10, vocab: c.vocabSize, seed: 8)
        let loss = { () -> Double in
            model.forward(tokens: inputs, batch: 1, seqLen: 10)
            let stats = model.routerStatistics()!
            return c.routerAuxLossCoef * stats.auxLoss + c.routerZLossCoef * stats.zLoss
        }
        _ = loss()
        model.zeroGrads()
        _ = model.lossAndBackward(inputs: inputs, targets: inputs, batch: 1, seqLen: 10, gradScale: 0)
        for t in model.layout.tensors where t.name.hasSuffix("block_sparse_moe.gate.weight") {
            GradientCheck(samples: 32).check(
                t.name, x: model.params.pointer + t.offset, count: t.count,
                analytic: Array(model.grads.array[t.offset..<t.offset + t.count]), loss: loss)
        }
        let expert = try XCTUnwrap(model.layout.tensor(named: "model.layers.1.block_sparse_moe.experts.0.w1.weight"))
        XCTAssertTrue(model.grads.array[expert.offset..<expert.offset + expert.count].allSatisfy { $0 == 0 })
    }

    /// A mixture of one expert, one per token, is its dense SwiGLU MLP: equal logits and gradients.
    func testOneExpertMixtureEqualsDenseModel() throws {
        var moeConfig = config(experts: 1, k: 1)
        moeConfig.outputRouterLogits = false
        moeConfig.routerZLossCoef = 0
        var denseConfig = moeConfig
        denseConfig.numLocalExperts = 0
        let moe = try LlamaModel(config: moeConfig)
        let dense = try LlamaModel(config: denseConfig)
        dense.initializeWeights(seed: 3, std: 0.2)
        moe.initializeWeights(seed: 4, std: 0.2)
        let names = [
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "input_layernorm",
            "post_attention_layernorm",
        ]
        func copy(_ from: String, _ to: String) throws {
            let s = try XCTUnwrap(dense.layout.tensor(named: from))
            let d = try XCTUnwrap(moe.layout.tensor(named: to))
            (moe.params.pointer + d.offset).update(from: dense.params.pointer + s.offset, count: s.count)
        }
        for name in ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"] { try copy(name, name) }
        for i in 0..<moeConfig.numHiddenLayers {
            let p = "model.layers.\(i)."
            for n in names { try copy(p + n + ".weight", p + n + ".weight") }
            for (dense, expert) in [("gate_proj", "w1"), ("up_proj", "w3"), ("down_proj", "w2")] {
                try copy(p + "mlp.\(dense).weight", p + "block_sparse_moe.experts.0.\(expert).weight")
            }
        }
        let inputs = tokens(12, vocab: moeConfig.vocabSize, seed: 5)
        let targets = tokens(12, vocab: moeConfig.vocabSize, seed: 6)
        let a = dense.lossAndBackward(inputs: inputs, targets: targets, batch: 2, seqLen: 6, gradScale: 1)
        let b = moe.lossAndBackward(inputs: inputs, targets: targets, batch: 2, seqLen: 6, gradScale: 1)
        XCTAssertEqual(a.lossSum, b.lossSum, accuracy: 1e-5 * abs(a.lossSum))
        let dg = try XCTUnwrap(dense.layout.tensor(named: "model.layers.0.mlp.down_proj.weight"))
        let mg = try XCTUnwrap(moe.layout.tensor(named: "model.layers.0.block_sparse_moe.experts.0.w2.weight"))
        for i in 0..<dg.count {
            XCTAssertEqual(dense.grads[dg.offset + i], moe.grads[mg.offset + i], accuracy: 1e-5)
        }
    }

    /// The activation memory the model reports equals the formula the planner uses.
    func testActivationBytesMatchAllocation() throws {
        for recompute in ActivationRecompute.allCases {
            let c = config()
            let model = try LlamaModel(config: c)
            model.recompute = recompute
            let inputs = tokens(12, vocab: c.vocabSize, seed: 9)
            _ = model.lossAndBackward(inputs: inputs, targets: inputs, batch: 2, seqLen: 6, gradScale: 1)
            XCTAssertEqual(
                model.activationBytesAllocated,
                LlamaModel.activationBytes(c, batch: 2, seqLen: 6, recompute: recompute), "\(recompute)")
        }
    }
}
