import Foundation
import KumoCore
import KumoModel
import KumoParallel

/// A layout's predicted memory, traffic and speed on a machine.
public struct Plan: Sendable {
    public let layout: TrainingLayout
    public let hardware: HardwareProfile
    public let hosts: Int
    public let threads: Int
    public let memory: MemoryModel
    public let comm: CommVolume
    /// The slowest stage's step.
    public let time: StepTime
    /// Memory one rank may use.
    public let availableBytesPerRank: Int

    /// Predicts `layout` with `threads` per rank on `hosts` hosts of `hardware`.
    public init(_ layout: TrainingLayout, hardware: HardwareProfile, hosts: Int, threads: Int)
        throws(ParallelConfigError)
    {
        try layout.parallel.validate(layout.model, batch: layout.batch)
        _ = try DeviceMeshCheck.check(layout)
        self.layout = layout
        self.hardware = hardware
        self.hosts = hosts
        self.threads = threads
        let perHost = max(1, (layout.ranks + hosts - 1) / hosts)
        let memory = try MemoryModel(layout, runtimeBytes: hardware.runtimeBytes(ranksOnHost: perHost))
        self.memory = memory
        let shards = try layout.parallel.stageShards(layout.model, seqLen: layout.batch.seqLen)
        let model = StepTimeModel(profile: hardware, threads: threads, ranksPerHost: perHost)
        let stages = shards.indices.map { s in
            let parameters = ParameterLayout(layout.model, shard: shards[s]).count
            let reforwards = layout.reforwards(stage: s)
            let comm = CommVolume(
                layout, ranksPerHost: perHost, stageParameters: parameters, stageLayers: shards[s].layers.count,
                hasHead: shards[s].hasHead, reforwards: reforwards)
            let state = memory.stages[s]
            let time = model.step(
                layout, shard: shards[s], stateBytes: state.weights + state.gradients + state.optimizer, comm: comm,
                reforwards: reforwards)
            return (comm, time)
        }
        (comm, time) = stages.max { $0.1.total < $1.1.total }!
        availableBytesPerRank =
            hardware.measured
            ? SystemInfo.physicalMemoryBytes * 9 / 10 / perHost : hardware.memoryBytesPerRank
    }

    public var stepSeconds: Double { time.total }
    public var tokensPerStep: Int { layout.batch.global * layout.batch.seqLen }
    public var tokensPerSecond: Double { Double(tokensPerStep) / stepSeconds }
    public var flopsPerToken: Double { layout.model.flopsPerToken(seqLen: layout.batch.seqLen) }
    /// Model FLOPs per second over the ranks' peak for the precision.
    public var mfu: Double {
        tokensPerSecond * flopsPerToken
            / (Double(layout.ranks) * hardware.peakGFLOPs(layout.precision, threads: threads) * 1e9)
    }
    public var peakMemoryBytesPerRank: Int { memory.peakBytesPerRank }
    public var fits: Bool { peakMemoryBytesPerRank <= availableBytesPerRank }

    /// The plan as JSON (the `kumo plan --json` contract).
    public var json: [String: Any] {
        let p = layout.parallel
        let stages: [[String: Any]] = memory.stages.map { m in
            Dictionary(uniqueKeysWithValues: m.parts.map { ($0.0, $0.1 as Any) })
                .merging(["stage": m.stage, "total": m.total]) { $1 }
        }
        var traffic: [String: Any] = [:]
        for g in comm.groups {
            traffic[g.group] = [
                "bytes_per_step": g.bytesPerStep, "link": g.link.rawValue,
                "inter_host_bytes_per_step":
                    g.interHostBytesPerStep, "overlapped": g.overlapped,
            ]
        }
        let links = comm.bytesByLink
        return [
            "hardware": hardware.name, "ranks": layout.ranks, "hosts": hosts, "threads": threads,
            "layout": [
                "data": layout.dataParallel, "tensor": p.tensor, "pipeline": p.pipeline, "expert": p.expert,
                "sequence": p.sequence,
                "zero_stage": p.zeroStage.rawValue, "shard_group_size": p.shardGroupSize,
                "micro_batch_size": layout.batch.micro, "accumulation_steps": layout.accumulationSteps,
                "global_batch_size": layout.batch.global, "seq_length": layout.batch.seqLen,
                "recompute": layout.recompute.rawValue, "precision": layout.precision.rawValue,
            ] as [String: Any],
            "memory": ["stages": stages, "largest_stage": memory.largest.stage] as [String: Any],
            "peak_memory_bytes_per_rank": peakMemoryBytesPerRank, "available_bytes_per_rank": availableBytesPerRank,
            "fits": fits, "flops_per_token": flopsPerToken, "flops_per_step": flopsPerToken * Double(tokensPerStep),
            "comm": traffic,
            "comm_bytes_per_step": [
                LinkClass.intraHost.rawValue: links[.intraHost] ?? 0,
                LinkClass.interHost.rawValue: links[.interHost] ?? 0,
            ],
            "time": Dictionary(uniqueKeysWithValues: time.parts.map { ($0.0, $0.1 as Any) }),
            "step_s": stepSeconds, "tokens_per_s": tokensPerSecond, "mfu": mfu, "bottleneck": time.bottleneck,
        ]
    }
}

/// The mesh a layout asks for must divide its ranks.
enum DeviceMeshCheck {
    static func check(_ t: TrainingLayout) throws(ParallelConfigError) -> Int {
        let cell = t.parallel.tensor * t.parallel.pipeline
        guard t.ranks % cell == 0 else {
            throw ParallelConfigError(
                "\(t.ranks) ranks are not a multiple of parallel.tensor × parallel.pipeline = \(cell)")
        }
        let perStep = t.batch.micro * t.dataParallel
        guard t.batch.global % perStep == 0 else {
            throw ParallelConfigError(
                "train.global_batch_size = \(t.batch.global) must be a multiple of micro-batch × data-parallel = "
                    + "\(perStep)")
        }
        return t.dataParallel
    }
}
