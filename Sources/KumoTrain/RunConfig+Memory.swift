import Foundation
import KumoCore
import KumoModel
import KumoParallel
import KumoPlan

extension RunConfig {
    /// This run as a `TrainingLayout` over `ranks` processes.
    public func trainingLayout(ranks: Int) -> TrainingLayout {
        TrainingLayout(
            model: model, parallel: parallel, ranks: ranks, batch: batchShape, rowsPerSample: rowsPerSample,
            recompute: recompute, precision: precision)
    }

    /// The memory of this run's ranks over `ranks` processes, before anything is allocated (the
    /// config was checked when loaded, so its pipeline stages cut).
    public func memory(ranks: Int, runtimeBytes: Int = 0) -> MemoryModel {
        do {
            return try MemoryModel(trainingLayout(ranks: ranks), runtimeBytes: runtimeBytes)
        } catch {
            preconditionFailure("[parallel] was checked when the config was loaded: \(error)")
        }
    }
}

extension MemoryModel {
    /// The largest rank's parts, for train.log and refusals.
    public var summary: String {
        let m = largest
        return "\(gib(m.total)) per rank (weights \(gib(m.weights + m.weightsBF16 + m.gatheredWeights)), "
            + "gradients \(gib(m.gradients)), AdamW \(gib(m.optimizer)), activations \(gib(m.activations)) = "
            + "\(m.activations) bytes, RoPE table \(gib(m.rope)))"
    }

    /// Throws when the largest rank would not fit in `available` bytes (by default 90% of physical
    /// memory: every rank of a one-machine run shares it, so the ranks on it are counted).
    public func check(available: Int = SystemInfo.physicalMemoryBytes * 9 / 10, ranksHere: Int = 1) throws {
        if peakBytesPerRank.multipliedReportingOverflow(by: ranksHere).overflow
            || peakBytesPerRank * ranksHere > available
        {
            throw ConfigError(
                "this run needs about \(summary)"
                    + (ranksHere > 1 ? " × \(ranksHere) ranks on this host" : "")
                    + " but the machine has \(gib(available)) usable; choose a smaller model.preset, more ranks "
                    + "(tensor, pipeline or ZeRO), train.recompute = \"full\" (or \"stage\" with many micro-batches "
                    + "in flight per pipeline stage), or lower train.micro_batch_size, "
                    + "train.seq_length or model.max_position_embeddings (kumo plan shows the parts)")
        }
    }
}

/// Formats bytes in GiB with two decimals.
func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
