import KumoModel

/// The pipeline cut was refused: the model has too few blocks for the stages.
public struct PipelinePlanError: Error, CustomStringConvertible {
    public var description: String
}

/// The cut of the block list into `parallel.pipeline` stages of consecutive blocks, balanced by
/// cost: each block costs its parameters plus its attention (2·seqLen·hidden per token, in
/// parameter-FLOP units), the first stage also the embedding table and the last the final norm
/// and output head. The cut minimises the most expensive stage; every stage gets at least one block.
public struct PipelinePlan: Sendable, Equatable {
    /// The global block indices of each stage, first stage first.
    public let stages: [Range<Int>]

    /// Cuts the blocks of `c` into `stages` stages, for sequences of `seqLen` tokens.
    public init(_ c: ModelConfig, stages p: Int, seqLen: Int) throws(PipelinePlanError) {
        let n = c.numHiddenLayers
        guard p >= 1, n >= p else {
            throw PipelinePlanError(
                description:
                    "parallel.pipeline = \(p): the model has \(n) blocks (num_hidden_layers) and every stage needs at "
                    + "least one; use parallel.pipeline between 1 and \(n)")
        }
        let whole = ParameterLayout(c)
        let block = Double(whole.block.count + 2 * seqLen * c.hiddenSize)
        let embedding = Double(whole.blocksStart)
        let head = Double(c.hiddenSize + c.vocabSize * c.hiddenSize)
        stages = Self.balanced(blocks: n, stages: p) { range in
            Double(range.count) * block + (range.lowerBound == 0 ? embedding : 0) + (range.upperBound == n ? head : 0)
        }
    }

    /// The contiguous split of `blocks` into `stages` non-empty ranges whose largest `cost` is
    /// least (dynamic programming over split points; ties keep earlier stages smaller).
    static func balanced(blocks n: Int, stages p: Int, cost: (Range<Int>) -> Double) -> [Range<Int>] {
        // best[k][j]: the least largest cost of blocks 0..<j in k stages; cut[k][j]: where the k-th stage starts.
        var best = Array(repeating: Array(repeating: Double.infinity, count: n + 1), count: p + 1)
        var cut = Array(repeating: Array(repeating: 0, count: n + 1), count: p + 1)
        best[0][0] = 0
        for k in 1...p {
            for j in k...n {
                for i in (k - 1)..<j where best[k - 1][i] < .infinity {
                    let worst = max(best[k - 1][i], cost(i..<j))
                    if worst < best[k][j] {
                        best[k][j] = worst
                        cut[k][j] = i
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for k in stride(from: p, through: 1, by: -1) {
            ranges.append(cut[k][end]..<end)
            end = cut[k][end]
        }
        return ranges.reversed()
    }

    /// The shard of stage `stage`: its blocks, the embedding on the first stage, the head on the last.
    public func shard(_ stage: Int) -> ModelShard {
        ModelShard(layers: stages[stage], hasEmbedding: stage == 0, hasHead: stage == stages.count - 1)
    }
}
