import Foundation
import KumoCore
import KumoModel

/// What one checkpoint write produced.
public struct CheckpointWrite: Sendable {
    /// The checkpoint directory.
    public var path: String
    /// Bytes of all its files.
    public var bytes: Int
    /// Wall time of the write, including the fsyncs.
    public var seconds: Double
}

extension Trainer {
    /// Everything besides tensors that a resumed run needs.
    public var trainState: TrainState {
        TrainState(
            step: step, optimizerStep: optimizer.step, dataPosition: dataPosition, seed: config.seed, lrScale: lrScale,
            lossHistory: spikeGuard.lossHistory, gradNormHistory: spikeGuard.gradNormHistory)
    }

    /// The whole model's layout: checkpoints hold the whole model's flat buffers, whatever the ranks hold.
    private var wholeLayout: ParameterLayout { ParameterLayout(config.model) }

    /// The whole model's tensors as a manifest lists them.
    public var manifestTensors: [ManifestTensor] {
        wholeLayout.tensors.map { ManifestTensor(name: $0.name, shape: $0.shape, offset: $0.offset) }
    }

    /// The layout this trainer's ranks form, as a manifest records it.
    public var parallelLayout: ParallelLayout {
        ParallelLayout(
            worldSize: world.size, dataParallel: plan.mesh.data, tensorParallel: plan.mesh.tensor,
            pipelineParallel: plan.mesh.pipeline, zeroStage: plan.config.zeroStage.rawValue,
            shardGroupSize: plan.config.shardGroupSize, expertParallel: plan.config.expert)
    }

    /// The runs between `range` of this rank's flat buffer and the whole model's, local offsets
    /// taken from the range's start; with `firstReplicaOnly`, only those the rank writes for its
    /// tensor-parallel replicas.
    private func wholeRuns(_ range: Range<Int>, firstReplicaOnly: Bool = false) -> [ShardRun] {
        model.layout.runs(in: wholeLayout, within: range, firstReplicaOnly: firstReplicaOnly).map {
            ShardRun(local: $0.local - range.lowerBound, whole: $0.whole, count: $0.count)
        }
    }

    /// What this rank writes: the ranges of the whole model it alone holds. Of data replicated
    /// over the data-parallel group the plan names the rank that writes it (`writesParameters`,
    /// `writesOptimizerState`); data replicated over the tensor group (norm weights, shared
    /// key/value heads) is written by its first holder. A rank with nothing to write writes no file.
    private var shardContents: [ShardContent] {
        var contents: [ShardContent] = []
        if plan.writesParameters {
            let p = plan.ownedParameters
            contents += ShardContent.merging(
                wholeRuns(p, firstReplicaOnly: true), of: "params", at: model.params.pointer + p.lowerBound)
        }
        if plan.writesOptimizerState {
            let runs = wholeRuns(optimizer.shard, firstReplicaOnly: true)
            for (name, buffer) in [("adam.m", optimizer.m), ("adam.v", optimizer.v)] {
                contents += ShardContent.merging(runs, of: name, at: buffer.pointer)
            }
        }
        return contents
    }

    /// Writes the checkpoint of the current step into `store`, every rank its own shard; rank 0
    /// creates the temporary directory, gathers each file's size and CRC-32 after all are written
    /// and commits the manifest. A failure on any rank is thrown on every rank, after rank 0
    /// removed what the write left (`PendingCheckpoint.discard`).
    public func saveCheckpoint(to store: CheckpointStore) throws -> CheckpointWrite {
        let t0 = SystemInfo.now()
        _ = try RankVerdict.gather(world) {
            if world.rank == 0 { _ = try store.begin(step: step) }
            return []
        }
        let pending = try store.begin(step: step, create: false)
        do {
            return try write(pending, started: t0)
        } catch {
            if world.rank == 0 { pending.discard() }
            throw error
        }
    }

    /// Writes every rank's shard of `pending` and commits it; throws the first failure on every rank.
    private func write(_ pending: PendingCheckpoint, started t0: Double) throws -> CheckpointWrite {
        let reports = try RankVerdict.gather(world) {
            let contents = shardContents
            guard !contents.isEmpty else { return [] }
            let file = try pending.writeShard(rank: world.rank, state: trainState, sections: contents)
            return Array(try JSONEncoder().encode(file))
        }
        let files = try reports.filter { !$0.isEmpty }.map {
            try JSONDecoder().decode(ManifestFile.self, from: Data($0))
        }
        _ = try RankVerdict.gather(world) {
            if world.rank == 0 {
                try pending.commit(
                    CheckpointManifest(
                        format: CheckpointManifest.formatName, version: CheckpointManifest.currentVersion, step: step,
                        layout: parallelLayout, flatCount: wholeLayout.count, tensors: manifestTensors, files: files,
                        config: config.toml()))
            }
            return []
        }
        return CheckpointWrite(
            path: pending.final, bytes: files.reduce(0) { $0 + $1.bytes }, seconds: SystemInfo.now() - t0)
    }

    /// Verifies the checkpoint directory `path` against this model (without recomputing CRC-32s
    /// unless `checksums`).
    /// A checkpoint of another model shape is refused naming the `[model]` keys that differ.
    public func verifyCheckpoint(_ path: String, checksums: Bool = true) throws -> VerifiedCheckpoint {
        do {
            return try VerifiedCheckpoint.open(
                path, tensors: manifestTensors, flatCount: wholeLayout.count, checksums: checksums)
        } catch var error as CheckpointError where error.kind == .mismatch {
            let saved = (try? VerifiedCheckpoint.readManifest(path))?.config ?? ""
            let keys = configDifferences(saved, config.toml()).filter { $0.key.hasPrefix("model.") }.map {
                "\($0.key) = \($0.old ?? "(unset)") in the checkpoint, \($0.new ?? "(unset)") in this run"
            }
            if !keys.isEmpty { error.message += "; it was written with " + keys.joined(separator: "; ") }
            error.message +=
                ". Resume with the checkpoint's [model] settings (drop the --config or --set that change them), "
                + "or train the new shape in another --run-dir"
            throw error
        }
    }

    /// Loads this rank's parameters, moments and the state from a verified checkpoint of any
    /// layout: each of its runs of the whole model is read from whichever files hold it.
    public func restore(from checkpoint: VerifiedCheckpoint) throws {
        let p = plan.ownedParameters
        try checkpoint.read("params", wholeRuns(p), into: model.params.pointer + p.lowerBound)
        let moments = wholeRuns(optimizer.shard)
        try checkpoint.read("adam.m", moments, into: optimizer.m.pointer)
        try checkpoint.read("adam.v", moments, into: optimizer.v.pointer)
        let state = checkpoint.state
        step = state.step
        optimizer.step = state.optimizerStep
        dataPosition = state.dataPosition
        lrScale = state.lrScale
        spikeGuard.lossHistory = state.lossHistory
        spikeGuard.gradNormHistory = state.gradNormHistory
    }

    /// Returns to the initial weights (seeded or `model.init`'s) with zero moments at step 0 (a
    /// rollback before any checkpoint).
    public func resetToInitialState() throws {
        try InitialWeights(config).fill(model)
        optimizer.m.zero()
        optimizer.v.zero()
        step = 0
        optimizer.step = 0
        dataPosition = 0
        lrScale = 1
        spikeGuard.lossHistory = []
        spikeGuard.gradNormHistory = []
    }
}
