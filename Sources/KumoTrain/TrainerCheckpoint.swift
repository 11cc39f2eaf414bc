import Foundation
import KumoCore

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

    /// The model's tensors as a manifest lists them.
    public var manifestTensors: [ManifestTensor] {
        model.layout.tensors.map { ManifestTensor(name: $0.name, shape: $0.shape, offset: $0.offset) }
    }

    /// Writes the checkpoint of the current step into `store` (parameters, AdamW moments, state).
    public func saveCheckpoint(to store: CheckpointStore) throws -> CheckpointWrite {
        let t0 = SystemInfo.now()
        let pending = try store.begin(step: step)
        let count = model.layout.count
        let sections = [("params", model.params), ("adam.m", optimizer.m), ("adam.v", optimizer.v)].map {
            ShardContent(name: $0.0, flatStart: 0, pointer: UnsafePointer($0.1.pointer), count: count)
        }
        let file = try pending.writeShard(rank: 0, state: trainState, sections: sections)
        try pending.commit(
            CheckpointManifest(
                format: CheckpointManifest.formatName, version: CheckpointManifest.currentVersion, step: step,
                layout: .single, flatCount: count, tensors: manifestTensors, files: [file], config: config.toml()))
        return CheckpointWrite(path: pending.final, bytes: file.bytes, seconds: SystemInfo.now() - t0)
    }

    /// Verifies the checkpoint directory `path` against this model.
    public func verifyCheckpoint(_ path: String) throws -> VerifiedCheckpoint {
        try VerifiedCheckpoint.open(path, tensors: manifestTensors, flatCount: model.layout.count)
    }

    /// Loads parameters, moments and state from a verified checkpoint.
    public func restore(from checkpoint: VerifiedCheckpoint) throws {
        let state = try checkpoint.load(
            rank: 0,
            into: ["params": model.params.pointer, "adam.m": optimizer.m.pointer, "adam.v": optimizer.v.pointer])
        step = state.step
        optimizer.step = state.optimizerStep
        dataPosition = state.dataPosition
        lrScale = state.lrScale
        spikeGuard.lossHistory = state.lossHistory
        spikeGuard.gradNormHistory = state.gradNormHistory
    }

    /// Returns to the seeded initial weights with zero moments at step 0 (a rollback before any checkpoint).
    public func resetToInitialState() {
        model.initializeWeights(seed: config.seed, std: config.double("model.init_std"))
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
