import Foundation
import KumoCore
import KumoModel
import KumoParallel

/// Bytes one rank of a training run needs, estimated before anything is allocated.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
    /// Parameters, gradients and two AdamW moments, fp32 (and under bf16 the parameters' bf16 copy).
    public let stateBytes: Int
    /// Activations and scratch of one micro-batch (fewer under full recompute).
    public let activationBytes: Int
    /// The RoPE table: cos and sin for every one of max_position_embeddings positions.
    public let ropeBytes: Int
    public var totalBytes: Int { stateBytes + activationBytes + ropeBytes }

    /// Estimates a rank of a run of `model` that holds `parameters` floats (the whole model by
    /// default) with micro-batches of `batch` × `seqLen` tokens, its products in `precision`.
    public init(
        model: ModelConfig, batch: Int, seqLen: Int, recompute: ActivationRecompute = .none, parameters: Int? = nil,
        precision: Precision = .fp32
    ) {
        stateBytes = (precision == .bf16 ? 18 : 16) * (parameters ?? ParameterLayout(model).count)
        activationBytes = LlamaModel.activationBytes(model, batch: batch, seqLen: seqLen, recompute: recompute)
        let rope = RoPETable.bytes(headDim: model.headDim, maxPositions: model.maxPositionEmbeddings)
        ropeBytes = rope < Double(Int.max / 4) ? Int(rope) : Int.max / 4
    }

    /// Estimates the largest rank of the run `config` describes: the parameters of its biggest
    /// pipeline stage's tensor slice as `ParallelConfig.stageShards` cuts them (ZeRO's partitions
    /// are not subtracted, and the activations are the whole model's: both bound a rank from above);
    /// a micro-batch of DPO pairs holds two sequences per pair.
    public init(_ config: RunConfig) {
        let c = config.model
        let shards = (try? config.parallel.stageShards(c, seqLen: config.seqLength)) ?? [.whole(c)]
        let held = shards.map { shard in
            // A shard the model cannot be cut into is refused with its message when the config is loaded.
            (try? shard.validate(c)) == nil ? ParameterLayout(c).count : ParameterLayout(c, shard: shard).count
        }
        self.init(
            model: c, batch: config.microBatchSize * config.rowsPerSample, seqLen: config.seqLength,
            recompute: config.recompute,
            parameters: held.max(), precision: config.precision)
    }

    public var description: String {
        "\(gib(totalBytes)) (weights+grads+AdamW \(gib(stateBytes)), activations \(gib(activationBytes)) = "
            + "\(activationBytes) bytes, RoPE table \(gib(ropeBytes)))"
    }

    /// Throws when the run would not fit in `available` bytes (by default 90% of physical memory).
    public func check(available: Int = SystemInfo.physicalMemoryBytes * 9 / 10) throws {
        if totalBytes > available {
            throw ConfigError(
                "this run needs about \(self) but the machine has \(gib(available)) usable; "
                    + "choose a smaller model.preset, or lower train.micro_batch_size, train.seq_length or "
                    + "model.max_position_embeddings")
        }
    }
}

/// Formats bytes in GiB with two decimals.
func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
