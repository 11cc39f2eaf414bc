import KumoCore
import KumoModel
import KumoParallel

/// Enumerates layouts of a model on `nodes` hosts of a profile (tensor, pipeline and data
/// parallelism, ZeRO stage, ZeRO-3 confined to a host or not, micro-batch,
/// recompute, precision), drops those Kumo refuses or that do not fit, and ranks the rest by
/// predicted tokens/s.
public struct LayoutSearch: Sendable {
    public var model: ModelConfig
    public var hardware: HardwareProfile
    public var nodes: Int
    public var globalBatch: Int
    public var seqLen: Int
    public var threads: Int

    public init(
        model: ModelConfig, hardware: HardwareProfile, nodes: Int, globalBatch: Int, seqLen: Int, threads: Int? = nil
    ) {
        self.model = model
        self.hardware = hardware
        self.nodes = nodes
        self.globalBatch = globalBatch
        self.seqLen = seqLen
        self.threads = threads ?? max(1, hardware.coresPerHost / hardware.ranksPerHost)
    }

    /// What the search saw: layouts tried, refused by Kumo's checks, not fitting, and the fitting
    /// plans fastest first.
    public struct Result: Sendable {
        public var tried = 0
        public var refused = 0
        public var tooLarge = 0
        public var plans: [Plan] = []
        /// Of the layouts that do not fit, the one needing the least memory per rank.
        public var nearest: Plan?
    }

    public var ranks: Int { nodes * hardware.ranksPerHost }

    /// The parallel settings to try: tensor sizes up to 8 (inside a host or, past its ranks, across
    /// hosts), pipeline sizes dividing the layers, every ZeRO stage, ZeRO-3 over the whole
    /// data-parallel group or one host; for a mixture, expert sizes dividing its experts (the
    /// combinations Kumo refuses are counted as refused by `run`).
    func parallelCandidates() -> [ParallelConfig] {
        let powers = (0..<8).map { 1 << $0 }
        let experts = model.isMoE ? (0..<10).map { 1 << $0 }.filter { model.numLocalExperts % $0 == 0 } : [1]
        let tensors = powers.filter { $0 <= 8 && ranks % $0 == 0 }
        let pipelines = powers.filter { $0 <= model.numHiddenLayers && model.numHiddenLayers % $0 == 0 }
        var out: [ParallelConfig] = []
        for tp in tensors {
            for pp in pipelines where ranks % (tp * pp) == 0 {
                let dp = ranks / (tp * pp)
                for zero in ZeROStage.allCases where zero == .none || dp > 1 {
                    let perHost = max(1, hardware.ranksPerHost / tp)
                    let groups =
                        zero == .parameters && perHost > 1 && perHost < dp && dp % perHost == 0 ? [0, perHost] : [0]
                    // Sequence parallelism is left out: Kumo's sequence-parallel ranks keep whole-row buffers,
                    // so it changes neither memory nor traffic here.
                    for group in groups {
                        for ep in experts where dp % ep == 0 {
                            out.append(
                                ParallelConfig(
                                    tensor: tp, pipeline: pp, expert: ep, zeroStage: zero, shardGroupSize: group))
                        }
                    }
                }
            }
        }
        return out
    }

    public func run() -> Result {
        var result = Result()
        let precisions = Precision.allCases.filter { hardware.peakGFLOPs($0, threads: threads) > 0 }
        for parallel in parallelCandidates() {
            let dp = ranks / (parallel.tensor * parallel.pipeline)
            for micro in [1, 2, 4, 8, 16] where globalBatch % (micro * dp) == 0 {
                for recompute in ActivationRecompute.allCases {
                    for precision in precisions {
                        result.tried += 1
                        let layout = TrainingLayout(
                            model: model, parallel: parallel, ranks: ranks,
                            batch: BatchShape(micro: micro, global: globalBatch, seqLen: seqLen), recompute: recompute,
                            precision: precision)
                        guard let plan = try? Plan(layout, hardware: hardware, hosts: nodes, threads: threads) else {
                            result.refused += 1
                            continue
                        }
                        if plan.fits {
                            result.plans.append(plan)
                        } else {
                            result.tooLarge += 1
                            if plan.peakMemoryBytesPerRank < result.nearest?.peakMemoryBytesPerRank ?? .max {
                                result.nearest = plan
                            }
                        }
                    }
                }
            }
        }
        result.plans.sort { $0.tokensPerSecond > $1.tokensPerSecond }
        return result
    }
}
