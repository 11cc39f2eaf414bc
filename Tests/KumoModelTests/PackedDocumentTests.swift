import KumoCore
import XCTest

@testable import KumoModel

/// Documents packed into rows with positions (Megatron's reset_attention_mask and
/// reset_position_ids) train as if each document were run alone.
final class PackedDocumentTests: XCTestCase {
    override func setUp() { Threads.set(2) }

    let config = ModelConfig(
        vocabSize: 41, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, maxPositionEmbeddings: 32)
    /// Document lengths of each of the two rows of 16 tokens.
    let documents = [[5, 9, 2], [1, 12, 3]]
    let seqLen = 16

    /// Each token's position in its document.
    var positions: [Int32] { documents.flatMap { row in row.flatMap { (0..<$0).map(Int32.init) } } }

    /// Seeded inputs and targets for the packed rows, some targets ignored.
    func tokens() -> (inputs: [Int32], targets: [Int32]) {
        var rng = SeededRandom(seed: 8)
        let n = documents.count * seqLen
        let inputs = (0..<n).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        var targets = (0..<n).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        for i in [3, 20, 31] { targets[i] = -100 }
        return (inputs, targets)
    }

    /// (row, first offset, length) of every document.
    var spans: [(row: Int, start: Int, count: Int)] {
        documents.enumerated().flatMap { row, lengths in
            lengths.indices.map { (row, lengths[..<$0].reduce(0, +), lengths[$0]) }
        }
    }

    func model(_ recompute: ActivationRecompute, _ precision: Precision = .fp32) throws -> LlamaModel {
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 3, std: 0.2)
        model.recompute = recompute
        model.precision = precision
        return model
    }

    /// Per-document mean losses and the gradients of the packed batch, L = Σ token losses / scored.
    func packed(_ recompute: ActivationRecompute, _ precision: Precision = .fp32, positions: [Int32]?) throws -> (
        losses: [Double], grads: [Float]
    ) {
        let (inputs, targets) = tokens()
        let m = try model(recompute, precision)
        let rows = documents.count * seqLen
        let logits = positions.withPointer { m.forward(tokens: inputs, batch: 2, seqLen: seqLen, positions: $0) }
        let copy = Array(UnsafeBufferPointer(start: logits, count: rows * config.vocabSize))
        let losses = spans.map { span in
            let offset = span.row * seqLen + span.start
            var rowsLogits = Array(copy[offset * config.vocabSize..<(offset + span.count) * config.vocabSize])
            let result = CrossEntropyKernel.forwardBackward(
                logits: &rowsLogits, targets: Array(targets[offset..<offset + span.count]), rows: span.count,
                vocab: config.vocabSize, gradScale: 1)
            return result.lossSum / Double(result.count)
        }
        m.zeroGrads()
        let scored = Float(targets.filter { $0 != -100 }.count)
        _ = positions.withPointer {
            m.lossAndBackward(
                inputs: inputs, targets: targets, batch: 2, seqLen: seqLen, positions: $0, gradScale: 1 / scored)
        }
        return (losses, m.grads.array)
    }

    /// The same, each document run alone as a sequence of its own length, gradients summed.
    func oneByOne(_ recompute: ActivationRecompute, _ precision: Precision = .fp32) throws -> (
        losses: [Double], grads: [Float]
    ) {
        let (inputs, targets) = tokens()
        let m = try model(recompute, precision)
        m.zeroGrads()
        let scored = Float(targets.filter { $0 != -100 }.count)
        let losses = spans.map { span in
            let range = span.row * seqLen + span.start..<span.row * seqLen + span.start + span.count
            let result = m.lossAndBackward(
                inputs: Array(inputs[range]), targets: Array(targets[range]), batch: 1, seqLen: span.count,
                gradScale: 1 / scored)
            return result.lossSum / Double(result.count)
        }
        return (losses, m.grads.array)
    }

    func testPackedDocumentsGiveEachDocumentsLossAndTheSummedGradientsOfRunningThemOneByOne() throws {
        for recompute in ActivationRecompute.allCases {
            let alone = try oneByOne(recompute)
            let together = try packed(recompute, positions: positions)
            let lossError = zip(alone.losses, together.losses).map { abs($0 - $1) }.max()!
            let gradError = zip(alone.grads, together.grads).map { abs($0 - $1) }.max()!
            print("packed vs one by one, recompute \(recompute): max |Δ| loss \(lossError), gradient \(gradError)")
            XCTAssertLessThan(lossError, 1e-5, "recompute \(recompute)")
            XCTAssertLessThan(gradError, 1e-5, "recompute \(recompute)")
            XCTAssertGreaterThan(alone.grads.map(abs).max()!, 1e-3)
        }
        // Without positions the documents attend to each other: other losses, other gradients.
        let alone = try oneByOne(.none)
        let mixed = try packed(.none, positions: nil)
        XCTAssertGreaterThan(zip(alone.losses, mixed.losses).map { abs($0 - $1) }.max()!, 1e-3)
    }

    /// Under bf16 products the packed rows round the same weights and activations as the documents
    /// run alone; only the order of fp32 accumulation differs.
    func testPackedDocumentsUnderBF16MatchRunningThemOneByOne() throws {
        let alone = try oneByOne(.none, .bf16)
        let together = try packed(.none, .bf16, positions: positions)
        let lossError = zip(alone.losses, together.losses).map { abs($0 - $1) }.max()!
        let gradError = zip(alone.grads, together.grads).map { abs($0 - $1) }.max()!
        print("packed vs one by one, bf16: max |Δ| loss \(lossError), gradient \(gradError)")
        XCTAssertLessThan(lossError, 1e-5)
        XCTAssertLessThan(gradError, 1e-5)
        XCTAssertNotEqual(alone.losses, try oneByOne(.none).losses, "bf16 products change the losses")
    }

    /// Two pipeline stages with two micro-batches in flight, each with its own positions, equal
    /// the whole model bit for bit (every stage reads the positions; backward reads the slot's copy).
    func testPipelineStagesWithPositionsGiveTheWholeModelsLossAndGradients() throws {
        let (inputs, targets) = tokens()
        let micro = [positions, documents.flatMap { row in row.reversed().flatMap { (0..<$0).map(Int32.init) } }]
        let rows = documents.count * seqLen
        let whole = try model(.none)
        var wholeLoss = 0.0
        for i in 0..<2 {
            wholeLoss +=
                whole.lossAndBackward(
                    inputs: inputs, targets: targets, batch: 2, seqLen: seqLen, positions: micro[i], gradScale: 0.01
                ).lossSum
        }
        let stages = try [
            ModelShard(layers: 0..<1, hasEmbedding: true, hasHead: false),
            ModelShard(layers: 1..<2, hasEmbedding: false, hasHead: true),
        ].map { shard in
            let stage = try LlamaModel(config: config, shard: shard)
            stage.initializeWeights(seed: 3, std: 0.2)
            return stage
        }
        let h = config.hiddenSize
        var stagedLoss = 0.0
        for i in 0..<2 {
            let out = stages[0].forward(slot: i, tokens: inputs, batch: 2, seqLen: seqLen, positions: micro[i])
            stages[1].stageInput(slot: i, batch: 2, seqLen: seqLen).update(from: out, count: rows * h)
            let logits = stages[1].forward(slot: i, tokens: nil, batch: 2, seqLen: seqLen, positions: micro[i])
            stagedLoss +=
                CrossEntropyKernel.forwardBackward(
                    logits: logits, targets: targets, rows: rows, vocab: config.vocabSize, gradScale: 0.01
                ).lossSum
        }
        for i in 0..<2 {
            let dInput = stages[1].backward(slot: i, tokens: nil)
            stages[0].hiddenGradient(slot: i).update(from: dInput, count: rows * h)
            inputs.withUnsafeBufferPointer { _ = stages[0].backward(slot: i, tokens: $0.baseAddress!) }
        }
        XCTAssertEqual(stagedLoss, wholeLoss)
        var grads = [Float](repeating: .nan, count: whole.layout.count)
        for stage in stages { stage.layout.placeShard(stage.grads.pointer, into: &grads, wholeLayout: whole.layout) }
        XCTAssertEqual(grads, whole.grads.array)
    }
}

extension Optional where Wrapped == [Int32] {
    /// `body` of a pointer to the array's elements, or of nil.
    func withPointer<R>(_ body: (UnsafePointer<Int32>?) -> R) -> R {
        guard let self else { return body(nil) }
        return self.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
