import KumoCore
import KumoModel
import XCTest

@testable import KumoInference

/// Decoding with the key/value cache must reproduce the training forward pass over whole sequences.
final class KVCacheDecodingTests: XCTestCase {
    private func randomModel(heads: Int, kvHeads: Int, parallelLayers: Bool = false, experts: Int = 0) throws
        -> LlamaModel
    {
        let config = ModelConfig(
            vocabSize: 97, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: heads,
            numKeyValueHeads: kvHeads, maxPositionEmbeddings: 64, parallelLayers: parallelLayers,
            numLocalExperts: experts)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 7, std: 0.2)
        return model
    }

    private func tokens(_ count: Int, seed: UInt64) -> [Int32] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in Int32(rng.next() % 97) }
    }

    /// Logits of the training forward over `seq`, row by row.
    private func fullForward(_ model: LlamaModel, _ seq: [Int32]) -> [[Float]] {
        let v = model.config.vocabSize
        let logits = seq.withUnsafeBufferPointer { model.forward(tokens: $0.baseAddress!, batch: 1, seqLen: seq.count) }
        return (0..<seq.count).map { Array(UnsafeBufferPointer(start: logits + $0 * v, count: v)) }
    }

    private func maxDiff(_ a: [Float], _ b: UnsafePointer<Float>) -> Float {
        var m: Float = 0
        for i in a.indices { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    /// Prefills two sequences of different prompt lengths (one within, one beyond the matrix-vector
    /// kernels' rows), decodes both together token by token and compares every step's logits with a full
    /// forward pass: within `bound` (1e-4 with fp32 weights and cache), and not equal with a rounded
    /// cache (prefill attends over unrounded keys either way). Returns the largest difference.
    @discardableResult
    private func checkBatchedDecoding(
        _ model: LlamaModel, format: WeightFormat = .fp32, kvCache: KVCacheFormat = .fp32, bound: Float = 1e-4
    ) -> Float {
        let seqs = [tokens(20, seed: 1), tokens(27, seed: 2)]
        let prompts = [5, 11]
        let engine = InferenceEngine(model: model, slots: 2, capacity: 32, format: format, kvCache: kvCache)
        let references = seqs.map { fullForward(model, $0) }
        for (slot, seq) in seqs.enumerated() {
            let last = engine.prefill(slot: slot, tokens: Array(seq.prefix(prompts[slot])))
            let err = last.withUnsafeBufferPointer { maxDiff(references[slot][prompts[slot] - 1], $0.baseAddress!) }
            XCTAssertLessThan(err, bound, "prefill of slot \(slot): max |Δlogit| \(err)")
        }
        var worst: Float = 0
        for step in 0..<15 {
            let positions = prompts.map { Int32($0 + step) }
            let toks = (0..<2).map { seqs[$0][Int(positions[$0])] }
            let logits = engine.decode(tokens: toks, slots: [0, 1], positions: positions)
            for b in 0..<2 {
                let err = maxDiff(references[b][Int(positions[b])], logits + b * model.config.vocabSize)
                worst = max(worst, err)
            }
        }
        let what = "\(format) weights, \(kvCache) KV-cache decoding vs full forward: max |Δlogit| \(worst)"
        print(what)
        XCTAssertLessThan(worst, bound, what)
        if kvCache == .bf16 { XCTAssertGreaterThan(worst, 1e-4, "were the cached keys and values rounded?") }
        return worst
    }

    func testKVCacheDecodingMatchesFullForwardMultiHead() throws {
        checkBatchedDecoding(try randomModel(heads: 4, kvHeads: 4))
    }

    func testKVCacheDecodingMatchesFullForwardGroupedQuery() throws {
        checkBatchedDecoding(try randomModel(heads: 4, kvHeads: 2))
    }

    func testKVCacheDecodingMatchesFullForwardMultiQuery() throws {
        checkBatchedDecoding(try randomModel(heads: 4, kvHeads: 1))
    }

    func testKVCacheDecodingMatchesFullForwardParallelLayers() throws {
        checkBatchedDecoding(try randomModel(heads: 4, kvHeads: 2, parallelLayers: true))
    }

    /// A mixture of experts (4 experts, top-2) decodes through its router and experts on the fp32
    /// weights; with int8 weights only its attention and head are quantized.
    func testKVCacheDecodingMatchesFullForwardMixtureOfExperts() throws {
        let model = try randomModel(heads: 4, kvHeads: 2, experts: 4)
        checkBatchedDecoding(model)
        let int8 = checkBatchedDecoding(model, format: .int8, bound: 0.5)
        print("mixture of experts, int8 attention and head: max |Δlogit| \(int8) against the fp32 forward")
        XCTAssertGreaterThan(int8, 0, "int8 decoding should differ from fp32: were the attention weights quantized?")
    }

    func testBF16KVCacheDecodingStaysWithinBoundOfFullForward() throws {
        checkBatchedDecoding(try randomModel(heads: 4, kvHeads: 2), kvCache: .bf16, bound: 0.15)
    }

    func testPrefillReportsEveryPromptRowsLogits() throws {
        let model = try randomModel(heads: 4, kvHeads: 2)
        let seq = tokens(30, seed: 3)
        let reference = fullForward(model, seq)
        let engine = InferenceEngine(model: model, slots: 1, capacity: 32)
        var worst: Float = 0
        var seen = 0
        engine.prefill(slot: 0, tokens: seq) { row, logits in
            worst = max(worst, self.maxDiff(reference[row], logits))
            seen += 1
        }
        XCTAssertEqual(seen, seq.count)
        XCTAssertLessThan(worst, 1e-4, "prefill rows vs full forward: max |Δlogit| \(worst)")
    }
}
