import KumoCore
import XCTest

@testable import KumoModel

/// Stage recompute: micro-batches in flight keep only their stage input, and a backward that does
/// not directly follow its own forward re-runs the stage's forward into the buffers the slots
/// share. Losses and gradients equal keeping everything.
final class StageRecomputeTests: XCTestCase {
    override func setUp() { Threads.set(2) }

    private let (batch, seq) = (2, 8)

    private func config(experts: Int = 0) -> ModelConfig {
        ModelConfig(
            vocabSize: 41, hiddenSize: 32, intermediateSize: 24, numHiddenLayers: 3, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 16, numLocalExperts: experts,
            routerAuxLossCoef: 0.3, routerZLossCoef: 0.05)
    }

    /// Three micro-batches in two slots, in an order that makes every case happen: F0 F1 B0 (re-run:
    /// slot 1 was the last forward), F2 (into slot 0), B2 (directly after its forward), B1 (re-run).
    private let order: [(forward: Bool, micro: Int)] = [
        (true, 0), (true, 1), (false, 0), (true, 2), (false, 2), (false, 1),
    ]

    /// Each micro-batch's loss sum and the summed gradients of `recompute` over `order`; the allocated
    /// activation bytes are checked against the formula.
    private func run(
        _ c: ModelConfig, _ recompute: ActivationRecompute, precision: Precision = .fp32, positions: [Int32]? = nil,
        hooks: (LlamaModel) -> Void = { _ in }
    ) throws -> (losses: [Double], grads: [Float], router: [RouterStatistics?]) {
        let model = try LlamaModel(config: c)
        model.recompute = recompute
        model.precision = precision
        model.initializeWeights(seed: 5, std: 0.2)
        hooks(model)
        model.zeroGrads()
        var rng = SeededRandom(seed: 6)
        let rows = batch * seq
        let inputs = (0..<3).map { _ in (0..<rows).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        let targets = (0..<3).map { _ in (0..<rows).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        var losses = [Double](repeating: 0, count: 3)
        var router = [RouterStatistics?](repeating: nil, count: 3)
        for (forward, i) in order {
            if forward {
                let logits = positions.withPointer {
                    model.forward(slot: i % 2, tokens: inputs[i], batch: batch, seqLen: seq, positions: $0)
                }
                losses[i] = model.lossGradient(logits: logits, targets: targets[i], rows: rows, gradScale: 0.1).lossSum
            } else {
                inputs[i].withUnsafeBufferPointer { _ = model.backward(slot: i % 2, tokens: $0.baseAddress!) }
                router[i] = model.routerStatistics(slot: i % 2)
            }
        }
        XCTAssertEqual(
            model.activationBytesAllocated,
            LlamaModel.activationBytes(c, batch: batch, seqLen: seq, recompute: recompute, slots: 2),
            "recompute \(recompute): allocated bytes vs the formula")
        return (losses, model.grads.array, router)
    }

    /// Asserts `stage` equals `none` in losses, gradients (largest difference over the largest
    /// gradient below 1e-6, printed) and routing.
    private func assertStageMatchesNone(
        _ c: ModelConfig, _ label: String, precision: Precision = .fp32, positions: [Int32]? = nil,
        hooks: (LlamaModel) -> Void = { _ in }
    ) throws {
        let kept = try run(c, .none, precision: precision, positions: positions, hooks: hooks)
        let stage = try run(c, .stage, precision: precision, positions: positions, hooks: hooks)
        let lossError = zip(stage.losses, kept.losses).map { abs($0 - $1) / abs($1) }.max()!
        let scale = kept.grads.map { abs($0) }.max()!
        let gradError = zip(stage.grads, kept.grads).map { abs($0 - $1) }.max()! / scale
        print("stage vs none, \(label): loss relative error \(lossError), gradient \(gradError)")
        XCTAssertGreaterThan(scale, 0, label)
        XCTAssertLessThanOrEqual(lossError, 1e-6, label)
        XCTAssertLessThanOrEqual(gradError, 1e-6, label)
        XCTAssertEqual(stage.router, kept.router, "\(label): routing statistics")
    }

    func testStageRecomputeEqualsKeepingEverything() throws {
        try assertStageMatchesNone(config(), "fp32")
    }

    func testStageRecomputeWithPackedDocumentsAndBF16() throws {
        let positions = (0..<batch).flatMap { _ in (0..<3).map { Int32($0) } + (0..<5).map { Int32($0) } }
        try assertStageMatchesNone(config(), "packed documents", positions: positions)
        try assertStageMatchesNone(config(), "bf16", precision: .bf16)
    }

    /// A mixture: the re-run routes again but must not count its routing into the step's router
    /// losses twice.
    func testStageRecomputeOfAMixtureCountsItsRoutingOnce() throws {
        let c = config(experts: 4)
        try assertStageMatchesNone(c, "mixture of experts")
        let stats = try XCTUnwrap(try run(c, .stage).router[1])
        XCTAssertEqual(stats.load.reduce(0, +), c.numHiddenLayers * batch * seq * 2, "routed rows of one pass")
    }

    /// Hooks in the manner of ZeRO-3 (a stage's parameters present only from its before-hook to the
    /// next one): the re-run reads each block after its own beforeForward, the final norm after the head's.
    func testStageRecomputeRunsAfterTheGatherOfEachStage() throws {
        try assertStageMatchesNone(config(), "gathered stages", hooks: installGatherHooks)
    }

    /// The slots keep their stage input, logits and positions; everything else is allocated once.
    func testStageRecomputeAllocatesOneSlotOfActivationsWhateverTheSlots() {
        let c = config()
        let bytes = { (mode: ActivationRecompute, slots: Int) in
            LlamaModel.activationBytes(c, batch: 2, seqLen: 8, recompute: mode, slots: slots)
        }
        XCTAssertEqual(bytes(.stage, 1), bytes(.none, 1), "one slot: the same buffers")
        let perSlot = 4 * 16 * (c.hiddenSize + c.vocabSize + 1)
        XCTAssertEqual(bytes(.stage, 5) - bytes(.stage, 1), 4 * perSlot)
        XCTAssertLessThan(bytes(.stage, 5), bytes(.full, 5))
    }
}
