import KumoCore
import XCTest

@testable import KumoModel

/// A whole model against its tensor shards run as threads of one process: the same loss and,
/// placed back into the whole layout, the same gradients.
final class TensorParallelModelTests: XCTestCase {
    let batch = 2
    let seqLen = 8

    func config(parallelLayers: Bool = false) -> ModelConfig {
        ModelConfig(
            vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 16, parallelLayers: parallelLayers)
    }

    /// Token ids with one ignored target (-100).
    func tokens(_ c: ModelConfig) -> (inputs: [Int32], targets: [Int32]) {
        var rng = SeededRandom(seed: 5)
        let n = batch * seqLen
        let inputs = (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        var targets = (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        targets[3] = -100
        return (inputs, targets)
    }

    /// Loss and whole-layout gradients of `t` tensor ranks (one rank: the whole model), with
    /// documents packed at `positions` or without.
    func lossAndGradients(
        _ c: ModelConfig, ranks t: Int, sequenceParallel: Bool, positions: [Int32]? = nil
    ) throws -> (Double, [Float]) {
        let whole = ParameterLayout(c)
        let (inputs, targets) = tokens(c)
        let group = ThreadTensorGroup(size: t)
        let models = try (0..<t).map { r in
            let shard = ModelShard(
                tensorRank: r, tensorSize: t, layers: 0..<c.numHiddenLayers, hasEmbedding: true, hasHead: true)
            let model = try LlamaModel(
                config: c, shard: shard,
                tensorParallel: t == 1 ? nil : group.ops(rank: r, sequenceParallel: sequenceParallel))
            model.initializeWeights(seed: 3, std: 0.2)
            return model
        }
        var losses = [Double](repeating: 0, count: t)
        var gradients = [Float](repeating: 0, count: whole.count)
        let lock = NSLock()
        group.run { r in
            let m = models[r]
            let loss = positions.withPointer {
                m.lossAndBackward(
                    inputs: inputs, targets: targets, batch: self.batch, seqLen: self.seqLen, positions: $0,
                    gradScale: 1 / 15
                ).lossSum
            }
            // What the trainer's TensorParallelGradients does: norm weights seeing part of the rows
            // are summed over the group (the tiny config's key/value heads are split, not replicated).
            for tensor in m.layout.tensors where sequenceParallel && tensor.shape.count == 1 {
                m.tensorParallel?.allReduce(m.grads.pointer + tensor.offset, count: tensor.count)
            }
            lock.lock()
            losses[r] = loss
            gradients.withUnsafeMutableBufferPointer {
                m.layout.placeShard(m.grads.pointer, into: $0.baseAddress!, wholeLayout: whole)
            }
            lock.unlock()
        }
        for r in 1..<t { XCTAssertEqual(losses[r], losses[0], "rank \(r)'s loss differs from rank 0's") }
        return (losses[0], gradients)
    }

    func assertShardsMatchWhole(
        _ c: ModelConfig, ranks t: Int, sequenceParallel: Bool, positions: [Int32]? = nil
    ) throws {
        let (loss, grads) = try lossAndGradients(c, ranks: 1, sequenceParallel: false, positions: positions)
        let (split, splitGrads) = try lossAndGradients(
            c, ranks: t, sequenceParallel: sequenceParallel, positions: positions)
        let lossError = abs(split - loss) / abs(loss)
        XCTAssertLessThan(lossError, 1e-6, "relative loss error \(lossError)")
        let diff = zip(grads, splitGrads).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let norm = grads.reduce(0.0) { $0 + Double($1) * Double($1) }
        let gradError = (diff / norm).squareRoot()
        XCTAssertLessThan(gradError, 1e-5, "relative L2 gradient error \(gradError)")
    }

    /// The whole model's matrices, in order, are consecutive normal draws of one seeded stream
    /// (norm weights 1); every tensor slice of every pipeline stage, which draws only its own
    /// elements, holds exactly the whole model's values there.
    func testShardsInitialiseToTheWholeModelsValues() throws {
        let c = config()
        let whole = try LlamaModel(config: c)
        whole.initializeWeights(seed: 11, std: 0.3)
        var rng = SeededRandom(seed: 11)
        for t in whole.layout.tensors {
            let values = Array(UnsafeBufferPointer(start: whole.params.pointer + t.offset, count: t.count))
            let expected =
                t.shape.count == 1
                ? [Float](repeating: 1, count: t.count)
                : values.map { _ in
                    Float(rng.normal() * 0.3)
                }
            XCTAssertEqual(values, expected, t.name)
        }
        for (t, stages) in [(1, [0..<1, 1..<2]), (2, [0..<2]), (4, [0..<1, 1..<2])] {
            let group = ThreadTensorGroup(size: t)
            for (s, layers) in stages.enumerated() {
                for r in 0..<t {
                    let shard = ModelShard(
                        tensorRank: r, tensorSize: t, layers: layers, hasEmbedding: s == 0,
                        hasHead: s == stages.count - 1)
                    let model = try LlamaModel(
                        config: c, shard: shard,
                        tensorParallel: t == 1 ? nil : group.ops(rank: r, sequenceParallel: false))
                    model.initializeWeights(seed: 11, std: 0.3)
                    var expected = [Float](repeating: .nan, count: model.layout.count)
                    model.layout.copyShard(from: whole.params.pointer, wholeLayout: whole.layout, into: &expected)
                    XCTAssertEqual(model.params.array, expected, "tp=\(t) rank \(r), blocks \(layers)")
                }
            }
        }
    }

    func testTwoTensorShardsGiveTheWholeModelsLossAndGradients() throws {
        try assertShardsMatchWhole(config(), ranks: 2, sequenceParallel: false)
        try assertShardsMatchWhole(config(parallelLayers: true), ranks: 2, sequenceParallel: false)
    }

    func testSequenceParallelShardsGiveTheWholeModelsLossAndGradients() throws {
        try assertShardsMatchWhole(config(), ranks: 2, sequenceParallel: true)
        try assertShardsMatchWhole(config(parallelLayers: true), ranks: 2, sequenceParallel: true)
    }

    /// Documents of 3 and 5 tokens, then 1, 4 and 3, packed into the two rows.
    func testPackedDocumentsOnTensorAndSequenceParallelShardsGiveTheWholeModelsLossAndGradients() throws {
        let positions: [Int32] = [0, 1, 2, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 0, 1, 2]
        try assertShardsMatchWhole(config(), ranks: 2, sequenceParallel: false, positions: positions)
        try assertShardsMatchWhole(config(parallelLayers: true), ranks: 2, sequenceParallel: true, positions: positions)
    }
}
