import Foundation

/// TRL's sigmoid DPO loss of one pair: with z = β·((log π(y_w) − log π_ref(y_w)) − (log π(y_l) −
/// log π_ref(y_l))), loss = −(1 − ε)·log σ(z) − ε·log σ(−z) (ε: label smoothing).
public struct DPOLoss: Sendable, Equatable {
    public var beta: Double
    public var labelSmoothing: Double

    /// The loss of `beta` and label smoothing `labelSmoothing`.
    public init(beta: Double, labelSmoothing: Double = 0) {
        self.beta = beta
        self.labelSmoothing = labelSmoothing
    }

    /// One pair's loss, its derivatives by the policy's chosen and rejected log-probabilities, and
    /// the implicit rewards β·(log π − log π_ref) of both responses.
    public struct Pair: Sendable, Equatable {
        public var loss: Double
        public var dChosen: Double
        public var dRejected: Double
        public var rewardChosen: Double
        public var rewardRejected: Double
    }

    /// The loss of a pair whose responses have policy log-probabilities `chosen`, `rejected` and
    /// reference log-probabilities `refChosen`, `refRejected`.
    public func pair(chosen: Double, rejected: Double, refChosen: Double, refRejected: Double) -> Pair {
        let rewardChosen = beta * (chosen - refChosen)
        let rewardRejected = beta * (rejected - refRejected)
        let z = rewardChosen - rewardRejected
        let e = labelSmoothing
        let loss = -(1 - e) * Self.logSigmoid(z) - e * Self.logSigmoid(-z)
        let dz = -(1 - e) * Self.sigmoid(-z) + e * Self.sigmoid(z)
        return Pair(
            loss: loss, dChosen: beta * dz, dRejected: -beta * dz, rewardChosen: rewardChosen,
            rewardRejected: rewardRejected)
    }

    /// log σ(x) = −log(1 + e^(−x)), without overflow.
    static func logSigmoid(_ x: Double) -> Double { min(x, 0) - log1p(exp(-abs(x))) }

    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
}

/// Sums over a step's pairs of the DPO metrics (`dpo.*` in metrics.jsonl, divided by the pairs).
public struct DPOSums {
    /// The metrics.jsonl keys, in the order of `values`.
    public static let keys = [
        "dpo.rewards_chosen", "dpo.rewards_rejected", "dpo.rewards_accuracy", "dpo.rewards_margin",
        "dpo.logps_chosen", "dpo.logps_rejected",
    ]
    /// No pairs yet.
    public init() {}

    /// Per key of `keys`, in order.
    public var values = [Double](repeating: 0, count: keys.count)

    /// Adds pair `p`, whose policy log-probabilities are `chosen` and `rejected`.
    public mutating func add(_ p: DPOLoss.Pair, chosen: Double, rejected: Double) {
        let terms = [
            p.rewardChosen, p.rewardRejected, p.rewardChosen > p.rewardRejected ? 1 : 0,
            p.rewardChosen - p.rewardRejected, chosen, rejected,
        ]
        for i in terms.indices { values[i] += terms[i] }
    }

    /// The means over `pairs` pairs, keyed.
    public func means(pairs: Int) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(Self.keys, values.map { $0 / Double(max(pairs, 1)) }))
    }
}
