/// A forward pass's routing over all mixture layers: tokens per expert, router probability per
/// expert and logsumexp² summed over the layers' rows. The router losses are computed over all
/// layers' tokens at once, as Hugging Face's `load_balancing_loss_func` concatenates the layers'
/// router logits.
public struct RouterStatistics: Sendable, Equatable {
    /// Tokens routed to each expert (each token counts once per chosen expert), summed over layers.
    public private(set) var load: [Int]
    /// Router probability of each expert, summed over layers and rows.
    public private(set) var probSum: [Double]
    /// Σ logsumexp(router logits)² over layers and rows.
    public private(set) var lseSquareSum = 0.0
    /// Layer-rows counted: mixture layers × rows of the pass.
    public private(set) var routedRows = 0

    /// Empty statistics for `experts` experts.
    public init(experts: Int) {
        load = Array(repeating: 0, count: experts)
        probSum = Array(repeating: 0, count: experts)
    }

    /// Adds one layer's pass.
    mutating func add(_ r: RouterActivations) {
        for e in load.indices {
            load[e] += r.load[e]
            probSum[e] += r.probSum[e]
        }
        lseSquareSum += r.lseSquareSum
        routedRows += r.passRows
    }

    /// Switch Transformer's load-balancing loss as Mixtral computes it: experts · Σ_e (fraction of
    /// routed tokens to e) · (mean router probability of e), fractions and means over all layers' rows.
    public var auxLoss: Double {
        guard routedRows > 0 else { return 0 }
        let n = Double(routedRows)
        return Double(load.count) * zip(load, probSum).reduce(0) { $0 + Double($1.0) / n * ($1.1 / n) }
    }

    /// ST-MoE's router z-loss: the mean over all layers' rows of logsumexp(router logits)².
    public var zLoss: Double { routedRows > 0 ? lseSquareSum / Double(routedRows) : 0 }

    /// The gradient of `weight` · (aux coefficient · auxLoss, where `c.outputRouterLogits`, + z
    /// coefficient · zLoss) with respect to each token's router probabilities and logsumexp.
    func lossGradient(_ c: ModelConfig, weight: Float) -> RouterLossGradient {
        let n = Double(max(routedRows, 1))
        let aux = c.outputRouterLogits ? c.routerAuxLossCoef * Double(weight) : 0
        let probs = load.map { Float(aux * Double(load.count) * Double($0) / (n * n)) }
        return RouterLossGradient(probs: probs, lseScale: Float(2 * c.routerZLossCoef * Double(weight) / n))
    }
}
