import Foundation
import KumoCore
import KumoData
import KumoInterop
import KumoModel
import XCTest

@testable import KumoTrain

/// Rows given outright, two per sample (a preference pair's chosen and rejected row).
struct FixedPairRows: SequenceSource {
    var inputs: [Int32]
    var targets: [Int32]
    var seqLen: Int
    var vocabSize: Int
    var rowsPerSample: Int { 2 }

    func fill(sample index: Int, into rows: SequenceRows) throws {
        let span = 2 * seqLen
        for i in 0..<span {
            rows.inputs[i] = inputs[index * span + i]
            rows.targets[i] = targets[index * span + i]
            rows.positions[i] = Int32(i % seqLen)
        }
    }
}

/// The DPO loss against PyTorch (scripts/golden/make_dpo_golden.py), finite differences and its
/// closed form.
final class DPOTests: XCTestCase {
    private static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden/golden-dpo.safetensors").path

    /// Forward, the DPO gradient (mean over the pairs) and backward; returns the mean loss.
    private func lossAndGradients(
        _ model: LlamaModel, _ batch: Batch, _ loss: DPOLoss, reference: [Double], backward: Bool = true
    ) -> Double {
        model.zeroGrads()
        let pairs = batch.batch / 2
        var sums = DPOSums()
        let logits = batch.inputs.withUnsafeBufferPointer {
            model.forward(tokens: $0.baseAddress!, batch: batch.batch, seqLen: batch.seqLen)
        }
        let total = loss.lossGradient(
            model: model, batch: batch, logits: logits, gradScale: 1 / Float(pairs), sums: &sums
        ) { (reference[2 * $0], reference[2 * $0 + 1]) }
        if backward { batch.inputs.withUnsafeBufferPointer { model.backward(tokens: $0.baseAddress!) } }
        return total / Double(pairs)
    }

    private func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        let num = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let den = b.reduce(0) { $0 + $1 * $1 }
        return (num / max(den, 1e-30)).squareRoot()
    }

    func testLossAndEveryGradientMatchPyTorch() throws {
        let f = try SafeTensorsFile(path: Self.golden)
        func meta<T: Decodable>(_ key: String, _: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(try XCTUnwrap(f.metadata[key], key).utf8))
        }
        let config = ModelConfig(
            vocabSize: try meta("vocab_size", Int.self), hiddenSize: try meta("hidden_size", Int.self),
            intermediateSize: try meta("intermediate_size", Int.self),
            numHiddenLayers: try meta("num_hidden_layers", Int.self),
            numAttentionHeads: try meta("num_attention_heads", Int.self),
            numKeyValueHeads: try meta("num_key_value_heads", Int.self), maxPositionEmbeddings: 64,
            ropeTheta: try meta("rope_theta", Double.self), rmsNormEps: try meta("rms_norm_eps", Double.self))
        Threads.set(1)
        let model = try LlamaModel(config: config)
        for t in model.layout.tensors {
            (model.params.pointer + t.offset).update(from: try f.floats(t.name), count: t.count)
        }
        let pairs = try meta("pairs", Int.self)
        let seq = try meta("seq_length", Int.self)
        let batch = Batch(batch: 2 * pairs, seqLen: seq)
        try batch.load(
            from: FixedPairRows(
                inputs: try f.int32s("input_ids"), targets: try f.int32s("targets"), seqLen: seq,
                vocabSize: config.vocabSize),
            firstSample: 0)
        let loss = DPOLoss(
            beta: try meta("beta", Double.self), labelSmoothing: try meta("label_smoothing", Double.self))
        let value = lossAndGradients(model, batch, loss, reference: try f.floats("ref_logps").map(Double.init))
        let expected = Double(try f.floats("loss")[0])
        XCTAssertEqual(value, expected, accuracy: 1e-5 * abs(expected))
        var worst = 0.0
        for t in model.layout.tensors {
            let kumo = (0..<t.count).map { Double(model.grads.pointer[t.offset + $0]) }
            let torch = try f.floats("grad." + t.name).map(Double.init)
            let err = relativeError(kumo, torch)
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-4, t.name)
        }
        print("golden dpo: loss \(value) vs \(expected), largest gradient relative error \(worst)")
    }

    func testGradientMatchesFiniteDifferences() throws {
        Threads.set(1)
        let config = ModelConfig(
            vocabSize: 24, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1, numAttentionHeads: 2,
            numKeyValueHeads: 1, maxPositionEmbeddings: 16)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 5, std: 0.3)
        var rng = SeededRandom(seed: 9)
        let seq = 6
        let inputs = (0..<4 * seq).map { _ in Int32(rng.next() % 24) }
        let targets = (0..<4 * seq).map { i in i % seq < 2 ? Int32(-100) : Int32(rng.next() % 24) }
        let batch = Batch(batch: 4, seqLen: seq)
        try batch.load(
            from: FixedPairRows(inputs: inputs, targets: targets, seqLen: seq, vocabSize: 24), firstSample: 0)
        let loss = DPOLoss(beta: 1, labelSmoothing: 0.2)
        let reference = [-12.0, -11.0, -13.5, -12.5]
        _ = lossAndGradients(model, batch, loss, reference: reference)
        let grads = (0..<model.layout.count).map { Double(model.grads.pointer[$0]) }
        // The 24 largest gradients, by central differences of the loss in the parameter.
        let picked = grads.indices.sorted { abs(grads[$0]) > abs(grads[$1]) }.prefix(24)
        let h: Float = 1e-2
        let numeric = picked.map { i -> Double in
            let p = model.params.pointer + i
            let saved = p.pointee
            p.pointee = saved + h
            let up = lossAndGradients(model, batch, loss, reference: reference, backward: false)
            p.pointee = saved - h
            let down = lossAndGradients(model, batch, loss, reference: reference, backward: false)
            p.pointee = saved
            return (up - down) / Double(2 * h)
        }
        let err = relativeError(picked.map { grads[$0] }, numeric)
        XCTAssertLessThan(err, 1e-2, "analytic \(picked.map { grads[$0] }) numeric \(numeric)")
        XCTAssertGreaterThan(abs(grads[picked.first!]), 1e-3, "the check needs gradients to compare")
    }

    func testClosedForm() {
        let plain = DPOLoss(beta: 0.1).pair(chosen: -5, rejected: -7, refChosen: -5, refRejected: -7)
        XCTAssertEqual(plain.loss, log(2), accuracy: 1e-12)
        XCTAssertEqual(plain.dChosen, -0.05, accuracy: 1e-12)
        XCTAssertEqual(plain.dRejected, 0.05, accuracy: 1e-12)
        // z = 0.5·((−4 + 5) − (−9 + 7)) = 1.5
        let p = DPOLoss(beta: 0.5, labelSmoothing: 0.25).pair(chosen: -4, rejected: -9, refChosen: -5, refRejected: -7)
        let s = 1 / (1 + exp(-1.5))
        XCTAssertEqual(p.loss, -0.75 * log(s) - 0.25 * log(1 - s), accuracy: 1e-12)
        XCTAssertEqual(p.dChosen, 0.5 * (-0.75 * (1 - s) + 0.25 * s), accuracy: 1e-12)
        XCTAssertEqual(p.rewardChosen, 0.5, accuracy: 1e-12)
        XCTAssertEqual(p.rewardRejected, -1, accuracy: 1e-12)
        let far = DPOLoss(beta: 1).pair(chosen: -2000, rejected: 0, refChosen: 0, refRejected: 0)
        XCTAssertEqual(far.loss, 2000, accuracy: 1e-9)
        XCTAssertEqual(far.dChosen, -1, accuracy: 1e-12)
    }
}
