import KumoCore
import KumoModel
import KumoParallel

/// Where a parallel group's ranks are: all on one host, or across hosts.
public enum LinkClass: String, Sendable, Codable {
    case intraHost = "intra_host"
    case interHost = "inter_host"
}

/// One group's traffic in a step: bytes each rank sends (ring algorithms: an all-reduce of B bytes
/// over n ranks sends 2(n−1)/n·B, a reduce-scatter or all-gather (n−1)/n·B), the messages'
/// latency-bound count, the link class, and how much of it compute can hide.
public struct GroupTraffic: Sendable, Equatable {
    /// `tp`, `dp`, `pp` (Kumo's group names).
    public var group: String
    public var link: LinkClass
    public var bytesPerStep: Double
    /// Latency terms per step (ring steps × collectives).
    public var messagesPerStep: Double
    /// Whether the transfers overlap compute (bucketed gradients, prefetched ZeRO-3 gathers) rather
    /// than stall it (tensor-parallel all-reduces, pipeline sends).
    public var overlapped: Bool
    /// Of `bytesPerStep`, the bytes that cross hosts (the hierarchical all-reduce sends less).
    public var interHostBytesPerStep: Double
}

/// The traffic of each group of a `TrainingLayout` over hosts of `ranksPerHost` ranks, following
/// the mesh's order (tensor ranks consecutive, then data, then pipeline).
public struct CommVolume: Sendable {
    public let groups: [GroupTraffic]

    /// The traffic of a stage of `stageLayers` blocks and `stageParameters` parameters, of whose
    /// step's micro-batches `reforwards` re-run the stage forward (stage recompute).
    public init(
        _ t: TrainingLayout, ranksPerHost: Int, stageParameters: Int, stageLayers: Int, hasHead: Bool,
        reforwards: Int = 0
    ) {
        let c = t.model
        // Forward passes over the blocks per step, beyond the one of each micro-batch: a second one of
        // each under full recompute, of the micro-batches re-run under stage recompute.
        let m = Double(t.accumulationSteps)
        let extraForwards = t.recompute == .full ? m : Double(reforwards)
        let (tp, pp, dp) = (t.parallel.tensor, t.parallel.pipeline, t.dataParallel)
        let rowBytes = 4 * Double(t.batch.micro * t.rowsPerSample * t.batch.seqLen * c.hiddenSize)
        func link(span: Int) -> LinkClass { span > ranksPerHost ? .interHost : .intraHost }
        var groups: [GroupTraffic] = []
        if tp > 1 {
            // Two all-reduces (or a reduce-scatter and an all-gather) forward and two backward per block.
            let n = Double(tp)
            let collectives = Double(stageLayers) * (4 * m + 2 * extraForwards)
            let bytes = collectives * 2 * (n - 1) / n * rowBytes
            groups.append(
                GroupTraffic(
                    group: "tp", link: link(span: tp), bytesPerStep: bytes, messagesPerStep: collectives * 2 * (n - 1),
                    overlapped: false, interHostBytesPerStep: link(span: tp) == .interHost ? bytes : 0))
        }
        if pp > 1 {
            // Activations forward and their gradients backward, per micro-batch.
            let bytes = 2 * m * rowBytes
            let span = tp * dp * pp
            groups.append(
                GroupTraffic(
                    group: "pp", link: link(span: span), bytesPerStep: bytes, messagesPerStep: 2 * m, overlapped: false,
                    interHostBytesPerStep: link(span: span) == .interHost ? bytes : 0))
        }
        let ep = c.isMoE ? t.parallel.expert : 1
        if ep > 1 {
            // Per block the routed rows go to the experts and back forward (again when recomputed), and
            // their gradients backward; each rank keeps 1/ep of them.
            let n = Double(ep)
            let exchanges = Double(stageLayers) * (4 * m + 2 * extraForwards)
            let bytes = exchanges * Double(c.numExpertsPerTok) * rowBytes * (n - 1) / n
            let span = tp * ep
            groups.append(
                GroupTraffic(
                    group: "ep", link: link(span: span), bytesPerStep: bytes, messagesPerStep: exchanges * (n - 1),
                    overlapped: false, interHostBytesPerStep: link(span: span) == .interHost ? bytes : 0))
        }
        if dp > 1 {
            groups.append(
                Self.dataParallel(t, ranksPerHost: ranksPerHost, parameters: stageParameters, reforwards: reforwards))
        }
        self.groups = groups
    }

    /// The gradient reduction and ZeRO's gathers over the data-parallel group.
    private static func dataParallel(_ t: TrainingLayout, ranksPerHost: Int, parameters: Int, reforwards: Int)
        -> GroupTraffic
    {
        let n = Double(t.shardRanks)
        let d = Double(t.dataParallel)
        let grads = 4 * Double(parameters)
        let m = Double(t.accumulationSteps)
        let part = (n - 1) / n
        var bytes: Double
        var collectives: Double
        switch t.parallel.zeroStage {
        case .none:
            (bytes, collectives) = (2 * (d - 1) / d * grads, 1)
        case .optimizer:
            // All-reduce of the gradients, all-gather of the updated partitions.
            (bytes, collectives) = (2 * (d - 1) / d * grads + part * grads, 2)
        case .gradients:
            // A reduce-scatter per micro-batch, an all-gather of the updated partitions.
            (bytes, collectives) = ((m + 1) * part * grads, m + 1)
        case .parameters:
            // Per micro-batch a reduce-scatter and two gathers (forward, backward), coded; a third for
            // each micro-batch whose stage forward is re-run.
            let gathered = Double(t.parallel.quantizedAllGather.encodedBytes(parameters))
            let r = Double(reforwards)
            (bytes, collectives) = (part * (m * grads + (2 * m + r) * gathered), 3 * m + r)
        }
        let span = t.parallel.tensor * t.dataParallel
        let link: LinkClass = span > ranksPerHost ? .interHost : .intraHost
        // Levelled over hosts: each rank sends its 1/L piece across hosts.
        let perHost = max(1, ranksPerHost / t.parallel.tensor)
        let levelled = t.parallel.hierarchical && link == .interHost && perHost > 1
        return GroupTraffic(
            group: "dp", link: link, bytesPerStep: bytes, messagesPerStep: collectives * 2 * (n - 1),
            overlapped: true,
            interHostBytesPerStep: link == .interHost ? (levelled ? bytes / Double(perHost) : bytes) : 0)
    }

    /// Bytes per step by link class.
    public var bytesByLink: [LinkClass: Double] {
        var out: [LinkClass: Double] = [:]
        for g in groups {
            out[.interHost, default: 0] += g.interHostBytesPerStep
            out[.intraHost, default: 0] += g.bytesPerStep - g.interHostBytesPerStep
        }
        return out
    }
}
