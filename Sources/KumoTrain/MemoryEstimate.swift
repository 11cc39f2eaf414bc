import Foundation
import KumoCore
import KumoModel

/// Bytes a single-process training run needs, estimated before anything is allocated.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
    /// Parameters, gradients and two AdamW moments, fp32.
    public let stateBytes: Int
    /// Activations and scratch of one micro-batch (fewer under full recompute).
    public let activationBytes: Int
    public var totalBytes: Int { stateBytes + activationBytes }

    /// Estimates a run of `model` with micro-batches of `batch` × `seqLen` tokens.
    public init(model: ModelConfig, batch: Int, seqLen: Int, recompute: ActivationRecompute = .none) {
        stateBytes = 16 * ParameterLayout(model).count
        activationBytes = LlamaModel.activationBytes(model, batch: batch, seqLen: seqLen, recompute: recompute)
    }

    /// Estimates the run `config` describes.
    public init(_ config: RunConfig) {
        self.init(
            model: config.model, batch: config.microBatchSize, seqLen: config.seqLength, recompute: config.recompute)
    }

    public var description: String {
        "\(gib(totalBytes)) (weights+grads+AdamW \(gib(stateBytes)), activations \(gib(activationBytes)) = "
            + "\(activationBytes) bytes)"
    }

    /// Throws when the run would not fit in `available` bytes (by default 90% of physical memory).
    public func check(available: Int = SystemInfo.physicalMemoryBytes * 9 / 10) throws {
        if totalBytes > available {
            throw ConfigError(
                "this run needs about \(self) but the machine has \(gib(available)) usable; "
                    + "choose a smaller model.preset, or lower train.micro_batch_size or train.seq_length")
        }
    }
}

/// Formats bytes in GiB with two decimals.
func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
