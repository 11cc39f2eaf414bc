import KumoCore
import KumoModel
import KumoParallel

/// Seconds of one training step on the slowest pipeline stage, part by part:
/// - `gemm`: every projection's forward and two backward products (and forward again under full
///   recompute, and the blocks' under stage recompute for the micro-batches whose backward does not
///   follow their forward) at the profile's rate for that shape, precision and thread count;
/// - `attention`: the flash kernel's forward and backward at the profile's attention rate;
/// - `memory_bound`: norms, RoPE, SwiGLU, residuals and the cross-entropy, as three passes over the
///   activations a block keeps (written forward, read backward, gradients written) at memory
///   bandwidth, and under ZeRO-3 the gathered stages written into freshly faulted pages;
/// - `optimizer`: AdamW's and clipping's passes over the rank's state;
/// - `comm_exposed`: tensor-parallel and pipeline transfers in full, data-parallel ones beyond what
///   the backward pass of the last micro-batch hides;
/// - `bubble`: the pipeline's (p − 1) idle micro-batch slots.
/// A measured host's ranks share its rates; on datasheet hosts, where ranks × threads exceed the
/// cores, compute is slowed by the ratio.
public struct StepTime: Sendable, Equatable {
    public var gemm = 0.0
    public var attention = 0.0
    public var memoryBound = 0.0
    public var optimizer = 0.0
    public var commExposed = 0.0
    public var bubble = 0.0

    /// The parts as (JSON key, seconds).
    public var parts: [(String, Double)] {
        [
            ("gemm", gemm), ("attention", attention), ("memory_bound", memoryBound), ("optimizer", optimizer),
            ("comm_exposed", commExposed), ("pipeline_bubble", bubble),
        ]
    }

    public var total: Double { parts.reduce(0) { $0 + $1.1 } }

    /// The largest part.
    public var bottleneck: String { parts.max { $0.1 < $1.1 }!.0 }
}

/// Predicts `StepTime` for a layout on a hardware profile.
public struct StepTimeModel: Sendable {
    public let profile: HardwareProfile
    public let threads: Int
    public let ranksPerHost: Int

    public init(profile: HardwareProfile, threads: Int, ranksPerHost: Int) {
        self.profile = profile
        self.threads = threads
        self.ranksPerHost = ranksPerHost
    }

    /// How much slower compute runs when the host's ranks ask for more threads than it has cores
    /// (datasheet profiles; a measured host's sharing is in `share`).
    var oversubscription: Double {
        profile.measured ? 1 : max(1, Double(min(ranksPerHost, 1 << 20) * threads) / Double(profile.coresPerHost))
    }

    /// A rank's part of a rate measured by thread count: on a measured CPU host the ranks share its
    /// cores, caches and memory, so each gets 1/ranks of the host's rate at all their threads (at
    /// most its cores); a datasheet rank (a GPU) has its own.
    func share(_ rate: (Int) -> Double) -> Double {
        guard profile.measured, ranksPerHost > 1 else { return rate(threads) }
        return rate(min(profile.coresPerHost, ranksPerHost * threads)) / Double(ranksPerHost)
    }

    /// Seconds of one micro-batch's forward and backward on a stage holding `shard`, of whose step's
    /// micro-batches `reforwards` re-run the stage's blocks forward (stage recompute).
    func microBatch(_ t: TrainingLayout, shard: ModelShard, reforwards: Int = 0) -> (
        gemm: Double, attention: Double, memory: Double
    ) {
        let c = t.model
        let rows = t.batch.micro * t.rowsPerSample * t.batch.seqLen
        let h = c.hiddenSize
        let (q, kv, ffn) = (shard.heads(c) * c.headDim, shard.kvHeads(c) * c.headDim, shard.intermediate(c))
        let passes = t.recompute == .full ? 4.0 : 3.0
        // Stage recompute runs the blocks (not the head) forward once more, averaged over the micro-batches.
        let blockPasses = passes + Double(reforwards) / Double(t.accumulationSteps)
        /// Products of `rows` rows in GEMMs of `m` rows each.
        func product(_ n: Int, _ k: Int, rows: Int = rows, m: Int? = nil, passes: Double = blockPasses) -> Double {
            let rate = share { profile.gemmGFLOPs(t.precision, threads: $0, m: m ?? rows, n: n, k: k) }
            return passes * 2 * Double(rows) * Double(n) * Double(k) / (rate * 1e9)
        }
        // A mixture runs its router, and each token through k experts: at a balanced load each of
        // this rank's experts multiplies rows·k / (its share of the experts) rows.
        let routed = c.isMoE ? rows * c.numExpertsPerTok : rows
        let perExpert = max(1, routed / shard.experts(c))
        let ffnProducts =
            product(2 * ffn, h, rows: routed, m: perExpert) + product(h, ffn, rows: routed, m: perExpert)
            + (c.isMoE ? product(c.numLocalExperts, h) : 0)
        let block = product(q + 2 * kv, h) + product(h, q) + ffnProducts
        let layers = Double(shard.layers.count)
        let head = shard.hasHead ? product(shard.vocab(c), h, passes: passes) : 0
        let attentionFLOPs = 12 * Double(q) * Double(t.batch.seqLen) * Double(rows) * (blockPasses / 3)
        let attention =
            layers * attentionFLOPs / (share { profile.attentionGFLOPs(seq: t.batch.seqLen, threads: $0) } * 1e9)
        let kept = LlamaModel.activationBytes(
            c, shard: shard, batch: t.batch.micro * t.rowsPerSample, seqLen: t.batch.seqLen, recompute: .none)
        let bandwidth = share { profile.bandwidth(threads: $0) }
        var memory = 3 * Double(kept) / bandwidth
        if t.parallel.zeroStage == .parameters {
            // Forward and backward gather every stage into pages released after the last use.
            let n = Double(t.shardRanks)
            let gathered = 2 * 4 * Double(ParameterLayout(c, shard: shard).count) * (n - 1) / n
            memory += gathered / (profile.pageFaultBytesPerSecond.map { $0 / Double(ranksPerHost) } ?? bandwidth)
        }
        return (layers * block + head, attention, memory)
    }

    /// The step time of `t` whose slowest stage holds `shard` and `stateBytes` of weights,
    /// gradients and optimizer state, with `comm`'s traffic; `reforwards` of its micro-batches re-run
    /// the stage forward (`TrainingLayout.reforwards(stage:)`).
    public func step(_ t: TrainingLayout, shard: ModelShard, stateBytes: Int, comm: CommVolume, reforwards: Int = 0)
        -> StepTime
    {
        let mb = microBatch(t, shard: shard, reforwards: reforwards)
        let slow = oversubscription
        let m = Double(t.accumulationSteps)
        var time = StepTime()
        time.gemm = m * mb.gemm * slow
        time.attention = m * mb.attention * slow
        time.memoryBound = m * mb.memory * slow
        // AdamW reads and writes parameter, gradient and two moments; clipping reads the gradients.
        time.optimizer = 2.25 * Double(stateBytes) / share { profile.bandwidth(threads: $0) } * slow
        let perMicroBatch = (mb.gemm + mb.attention + mb.memory) * slow
        // On a measured host with more ranks × threads than cores, a stage idle in the bubble frees
        // its core for the others: the shared rates already count the work of every rank.
        let crowded = profile.measured && ranksPerHost * threads > profile.coresPerHost
        time.bubble = crowded ? 0 : Double(t.parallel.pipeline - 1) * perMicroBatch
        let backward = perMicroBatch * 2 / 3
        for g in comm.groups {
            let seconds = transferSeconds(g)
            time.commExposed += g.overlapped ? max(seconds - backward, seconds / 8) : seconds
        }
        return time
    }

    /// Seconds of a group's traffic: its bytes over the link's bandwidth (the inter-host part over
    /// the inter-host link) and the latency of its messages.
    func transferSeconds(_ g: GroupTraffic) -> Double {
        let link = g.link == .interHost ? profile.interHost : profile.intraHost
        return g.messagesPerStep * link.latencySeconds + g.interHostBytesPerStep
            / profile.interHost.bandwidthBytesPerSecond + (g.bytesPerStep - g.interHostBytesPerStep)
            / profile.intraHost.bandwidthBytesPerSecond
    }
}
