import KumoCore
import XCTest

@testable import KumoModel

/// A training step's loss and gradients are the same, bit for bit, on any number of threads.
final class ThreadCountTests: XCTestCase {
    override func tearDown() { Threads.set(1) }

    /// Loss sum and gradients of one lossAndBackward of a seeded model on `threads` threads; the
    /// shapes are large and ragged enough that GEMMs are tiled and every kernel splits its rows.
    private func lossAndGradients(threads: Int, parallel: Bool) throws -> (Double, [Float]) {
        Threads.set(threads)
        let c = ModelConfig(
            vocabSize: 333, hiddenSize: 160, intermediateSize: 416, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: 2, maxPositionEmbeddings: 160, parallelLayers: parallel)
        let model = try LlamaModel(config: c)
        model.initializeWeights(seed: 11, std: 0.1)
        let (batch, seq) = (2, 130)
        var rng = SeededRandom(seed: 12)
        // Repeated ids, so that embedding rows receive several gradients.
        let inputs = (0..<batch * seq).map { _ in Int32(rng.next() % 40) }
        let targets = (0..<batch * seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        model.zeroGrads()
        let result = model.lossAndBackward(
            inputs: inputs, targets: targets, batch: batch, seqLen: seq, gradScale: 1 / Float(batch * seq))
        return (result.lossSum, model.grads.array)
    }

    func testLossAndGradientsAreBitIdenticalOnOneTwoAndThreeThreads() throws {
        for parallel in [false, true] {
            let (loss1, grads1) = try lossAndGradients(threads: 1, parallel: parallel)
            XCTAssertTrue(grads1.contains { $0 != 0 })
            for threads in [2, 3] {
                let (loss, grads) = try lossAndGradients(threads: threads, parallel: parallel)
                let diff = zip(grads1, grads).map { abs($0 - $1) }.max() ?? 0
                print(
                    "parallel_layers \(parallel), \(threads) threads: loss \(loss) vs \(loss1), max gradient difference \(diff)"
                )
                XCTAssertEqual(loss, loss1, "parallel_layers \(parallel), \(threads) threads")
                XCTAssertTrue(
                    grads == grads1, "parallel_layers \(parallel), \(threads) threads: max difference \(diff)")
            }
        }
    }

    func testGradientNormIsTheSameOnOneAndTwoThreads() throws {
        let (_, grads) = try lossAndGradients(threads: 1, parallel: false)
        let norms = [1, 2].map { threads in
            Threads.set(threads)
            return AdamWKernel.sumOfSquares(grads, count: grads.count)
        }
        XCTAssertEqual(norms[0], norms[1])
    }
}
