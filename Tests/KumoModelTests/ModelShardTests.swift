import XCTest

@testable import KumoModel

final class ModelShardTests: XCTestCase {
    /// A GQA model with fewer key/value heads (2) than some tensor sizes (4).
    let config = ModelConfig(
        vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 4, numAttentionHeads: 4,
        numKeyValueHeads: 2)

    /// Every float of the whole model, numbered.
    func numberedWhole() -> (ParameterLayout, [Float]) {
        let whole = ParameterLayout(config)
        return (whole, (0..<whole.count).map(Float.init))
    }

    func testTensorShardsPlacedTogetherRebuildTheWholeModel() throws {
        let (whole, values) = numberedWhole()
        for t in [2, 4] {
            var rebuilt = [Float](repeating: -1, count: whole.count)
            var localTotal = 0
            for r in 0..<t {
                let shard = ModelShard(tensorRank: r, tensorSize: t, layers: 0..<4, hasEmbedding: true, hasHead: true)
                try shard.validate(config)
                let layout = ParameterLayout(config, shard: shard)
                var local = [Float](repeating: 0, count: layout.count)
                layout.copyShard(from: values, wholeLayout: whole, into: &local)
                layout.placeShard(local, into: &rebuilt, wholeLayout: whole)
                localTotal += layout.count
            }
            XCTAssertEqual(rebuilt, values, "tp=\(t): shards do not cover the whole model")
            // Norms are on every rank; with t=4 > 2 kv heads, each kv head on 2 ranks.
            let h = config.hiddenSize
            let norms = (2 * config.numHiddenLayers + 1) * h
            let kv = 2 * config.numHiddenLayers * config.numKeyValueHeads * config.headDim * h
            let extra = (t - 1) * norms + (t > 2 ? kv : 0)
            XCTAssertEqual(localTotal, whole.count + extra, "tp=\(t)")
        }
    }

    /// What checkpoints write: the first replica's runs of every tensor rank of every stage,
    /// cut into arbitrary local ranges (ZeRO shards), cover each float of the whole model once, at
    /// the local float that holds it.
    func testFirstReplicaRunsWithinRangesCoverTheWholeModelOnce() throws {
        let (whole, values) = numberedWhole()
        for (t, stages) in [(1, [0..<4]), (2, [0..<1, 1..<4]), (4, [0..<2, 2..<4])] {
            var written = [Int](repeating: 0, count: whole.count)
            for (s, layers) in stages.enumerated() {
                for r in 0..<t {
                    let shard = ModelShard(
                        tensorRank: r, tensorSize: t, layers: layers, hasEmbedding: s == 0,
                        hasHead: s == stages.count - 1)
                    try shard.validate(config)
                    let layout = ParameterLayout(config, shard: shard)
                    var local = [Float](repeating: 0, count: layout.count)
                    layout.copyShard(from: values, wholeLayout: whole, into: &local)
                    let cuts = [0, layout.count / 3, layout.count / 3 + 7, layout.count]
                    for (lo, hi) in zip(cuts, cuts.dropFirst()) {
                        for run in layout.runs(in: whole, within: lo..<hi, firstReplicaOnly: true) {
                            XCTAssertTrue((lo..<hi).contains(run.local) && run.local + run.count <= hi, "tp=\(t)")
                            for i in 0..<run.count {
                                XCTAssertEqual(local[run.local + i], values[run.whole + i])
                                written[run.whole + i] += 1
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(written, [Int](repeating: 1, count: whole.count), "tp=\(t), \(stages.count) stages")
        }
    }

    func testOProjectionShardHoldsItsHeadsColumns() throws {
        let (whole, values) = numberedWhole()
        let shard = ModelShard(tensorRank: 1, tensorSize: 2, layers: 0..<4, hasEmbedding: true, hasHead: true)
        let layout = ParameterLayout(config, shard: shard)
        var local = [Float](repeating: 0, count: layout.count)
        layout.copyShard(from: values, wholeLayout: whole, into: &local)
        let o = try XCTUnwrap(layout.tensor(named: "model.layers.2.self_attn.o_proj.weight"))
        let w = try XCTUnwrap(whole.tensor(named: "model.layers.2.self_attn.o_proj.weight"))
        XCTAssertEqual(o.shape, [32, 16])
        // Row 3, local column 5 is whole column 16 + 5.
        XCTAssertEqual(local[o.offset + 3 * 16 + 5], values[w.offset + 3 * 32 + 21])
        let k = try XCTUnwrap(layout.tensor(named: "model.layers.2.self_attn.k_proj.weight"))
        XCTAssertEqual(k.slice, TensorSlice(dim: 0, start: 8, count: 8, total: 16))
    }

    func testKVHeadsAreReplicatedOnConsecutiveRanksWhenTensorRanksOutnumberThem() {
        let heads = (0..<4).map {
            ModelShard(tensorRank: $0, tensorSize: 4, layers: 0..<4, hasEmbedding: true, hasHead: true)
                .firstKVHead(config)
        }
        XCTAssertEqual(heads, [0, 0, 1, 1])
    }

    func testPipelineStagesPlacedTogetherRebuildTheWholeModel() {
        let (whole, values) = numberedWhole()
        var rebuilt = [Float](repeating: -1, count: whole.count)
        for stage in [0..<1, 1..<3, 3..<4] {
            let shard = ModelShard(
                layers: stage, hasEmbedding: stage.lowerBound == 0, hasHead: stage.upperBound == 4)
            let layout = ParameterLayout(config, shard: shard)
            var local = [Float](repeating: 0, count: layout.count)
            layout.copyShard(from: values, wholeLayout: whole, into: &local)
            layout.placeShard(local, into: &rebuilt, wholeLayout: whole)
        }
        XCTAssertEqual(rebuilt, values)
    }

    func testShardsThatCannotSplitTheModelAreRefusedNamingTheField() {
        func refusal(_ t: Int, _ c: ModelConfig) -> String? {
            do {
                try ModelShard(tensorRank: 0, tensorSize: t, layers: 0..<4, hasEmbedding: true, hasHead: true)
                    .validate(c)
                return nil
            } catch { return error.key }
        }
        XCTAssertEqual(refusal(3, config), "num_attention_heads")
        var kv3 = config
        kv3.numAttentionHeads = 12
        kv3.hiddenSize = 48
        kv3.numKeyValueHeads = 3
        kv3.intermediateSize = 96
        kv3.vocabSize = 96
        XCTAssertEqual(refusal(5, kv3), "num_attention_heads")
        XCTAssertEqual(refusal(4, kv3), "num_key_value_heads")
        XCTAssertEqual(refusal(6, kv3), nil)
    }
}
