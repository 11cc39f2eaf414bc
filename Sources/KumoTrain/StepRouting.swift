import KumoComm
import KumoModel

/// A step's routing in a mixture of experts, summed over its forward passes (micro-batches) on
/// this rank: the router losses and the tokens each expert received.
struct StepRouting {
    private var passes = 0
    private var auxLoss = 0.0
    private var zLoss = 0.0
    /// Tokens routed to each expert, summed over passes and layers.
    private var load: [Double]
    private let layers: Int

    init(_ c: ModelConfig) {
        load = Array(repeating: 0, count: c.numLocalExperts)
        layers = c.numHiddenLayers
    }

    /// Adds one forward pass's statistics.
    mutating func add(_ s: RouterStatistics) {
        passes += 1
        auxLoss += s.auxLoss
        zLoss += s.zLoss
        for e in load.indices { load[e] += Double(s.load[e]) }
    }

    /// The step's metrics over `group`'s ranks: `moe.aux_loss` and `moe.z_loss` (means over the
    /// passes), `moe.tokens_per_expert.<e>` (tokens the step routed to expert e in each layer, on
    /// average over the layers) and `moe.load_max_over_mean` (1 when balanced).
    func metrics(over group: any Communicator) -> [String: Double] {
        var sums = [Double(passes), auxLoss, zLoss] + load
        group.allReduce(&sums, op: .sum)
        let n = max(sums[0], 1)
        let perLayer = sums[3...].map { $0 / Double(layers) }
        let mean = perLayer.reduce(0, +) / Double(max(perLayer.count, 1))
        var m = ["moe.aux_loss": sums[1] / n, "moe.z_loss": sums[2] / n]
        m["moe.load_max_over_mean"] = mean > 0 ? (perLayer.max() ?? 0) / mean : 0
        for (e, tokens) in perLayer.enumerated() { m["moe.tokens_per_expert.\(e)"] = tokens }
        return m
    }
}
