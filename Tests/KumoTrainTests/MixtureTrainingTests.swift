import KumoCore
import KumoData
import KumoModel
import XCTest

@testable import KumoTrain

/// Training a mixture of experts: the router metrics of a step, and accumulation over
/// micro-batches equal to one large batch where the loss is additive over tokens.
final class MixtureTrainingTests: XCTestCase {
    private func config(_ overrides: [String]) throws -> RunConfig {
        try RunConfig.load(
            path: nil,
            overrides: [
                "model.vocab_size=97", "model.hidden_size=32", "model.intermediate_size=24",
                "model.num_hidden_layers=2", "model.num_attention_heads=4", "model.num_key_value_heads=2",
                "model.max_position_embeddings=64", "model.num_local_experts=4", "model.num_experts_per_tok=2",
                "data.synthetic=true", "train.seq_length=16", "train.threads=1", "optim.warmup_steps=2",
                "optim.lr=3e-3",
            ] + overrides)
    }

    private func run(_ c: RunConfig) throws -> (metrics: [StepMetrics], params: [Float]) { try trainSteps(c) }

    /// `moe.aux_loss`, `moe.z_loss`, `moe.load_max_over_mean` and one `moe.tokens_per_expert.<e>`
    /// per expert, which add up to the step's tokens times the experts per token.
    func testStepReportsRouterLossesAndTokensPerExpert() throws {
        let c = try config([
            "train.steps=2", "train.micro_batch_size=2", "train.global_batch_size=4", "model.output_router_logits=true",
            "model.router_z_loss_coef=0.001",
        ])
        for m in try run(c).metrics {
            let perExpert = (0..<4).map { m.extra["moe.tokens_per_expert.\($0)"] }
            XCTAssertFalse(perExpert.contains(nil), "keys: \(m.extra.keys.sorted())")
            XCTAssertEqual(perExpert.compactMap { $0 }.reduce(0, +), Double(4 * 16 * 2), accuracy: 1e-9)
            XCTAssertGreaterThanOrEqual(m.extra["moe.aux_loss"] ?? 0, 2 - 1e-9, "top-2 Switch loss is at least 2")
            XCTAssertGreaterThan(m.extra["moe.z_loss"] ?? 0, 0)
            XCTAssertGreaterThanOrEqual(m.extra["moe.load_max_over_mean"] ?? 0, 1)
        }
    }

    /// Without the router losses, which are per pass, four micro-batches of one sample train as one
    /// batch of four.
    func testMixtureGradientAccumulationMatchesOneLargeBatch() throws {
        let whole = try run(try config(["train.steps=3", "train.micro_batch_size=4", "train.global_batch_size=4"]))
        let accumulated = try run(
            try config(["train.steps=3", "train.micro_batch_size=1", "train.global_batch_size=4"]))
        assertSameTraining(whole, accumulated)
    }

    /// The presets: LLM-jp-3's 8×13B shape, and the small mixtures with their dense twin's active parameters.
    func testPresetsHoldEightExpertsAndEqualActiveParameters() throws {
        let big = try RunConfig.load(path: nil, overrides: ["model.preset=\"8x13b\"", "data.synthetic=true"]).model
        XCTAssertEqual(big.numLocalExperts, 8)
        XCTAssertEqual(big.numExpertsPerTok, 2)
        XCTAssertEqual(big.hiddenSize, 5120)
        XCTAssertEqual(big.numHiddenLayers, 40)
        for (moe, dense) in [("tiny-moe", "tiny"), ("small-moe", "small")] {
            let m = try XCTUnwrap(ModelPreset.config(moe))
            let d = try XCTUnwrap(ModelPreset.config(dense))
            XCTAssertEqual(m.matmulParameterCount, d.matmulParameterCount + m.numHiddenLayers * 8 * m.hiddenSize)
        }
    }
}
