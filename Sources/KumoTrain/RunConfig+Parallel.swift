import KumoComm
import KumoParallel

extension RunConfig {
    /// `[parallel]`, typed: the one place the `parallel.*` keys are read (checked when the config
    /// is loaded, so it always decodes).
    public var parallel: ParallelConfig {
        do {
            return try decodeParallel()
        } catch {
            preconditionFailure("[parallel] was checked when the config was loaded: \(error)")
        }
    }

    /// The batch the trainer's ranks split: micro-batches of `train.micro_batch_size` ×
    /// `train.seq_length`, `train.global_batch_size` sequences per step.
    public var batchShape: BatchShape {
        BatchShape(micro: microBatchSize, global: globalBatchSize, seqLen: seqLength)
    }

    /// Decodes `[parallel]`, refusing values none of its settings have.
    private func decodeParallel() throws(ParallelConfigError) -> ParallelConfig {
        guard let zeroStage = ZeROStage(rawValue: int("parallel.zero_stage")) else {
            throw .unknownZeROStage(int("parallel.zero_stage"))
        }
        guard let schedule = PipelineSchedule(rawValue: string("parallel.schedule")) else {
            throw .unknownSchedule(string("parallel.schedule"))
        }
        guard let codec = GatherCodec(rawValue: string("parallel.quantized_allgather")) else {
            throw .quantizedGather(string("parallel.quantized_allgather"))
        }
        return ParallelConfig(
            tensor: int("parallel.tensor"), sequence: bool("parallel.sequence"), pipeline: int("parallel.pipeline"),
            schedule: schedule, expert: int("parallel.expert"), zeroStage: zeroStage,
            shardGroupSize: int("parallel.shard_group_size"),
            quantizedAllGather: codec, commTimeoutSeconds: double("parallel.comm_timeout_s"),
            bucketMiB: double("parallel.bucket_mib"), hierarchical: bool("parallel.hierarchical"))
    }

    /// Refuses `[parallel]` settings that cannot work with this model and batch on any world
    /// size (`ParallelConfig.validate`); the world's own checks come when `parallelize` runs.
    func validateParallel() throws {
        do {
            try decodeParallel().validate(model, batch: batchShape)
        } catch {
            throw ConfigError(error.description)
        }
    }
}
