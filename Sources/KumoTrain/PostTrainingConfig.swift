import KumoData

/// What the records of `data.path` hold (`data.format`).
public enum DataFormat: String, Sendable, CaseIterable {
    /// Plain text (JSONL `data.text_field`, or text files) for next-token pretraining.
    case text
    /// Instruction records {instruction, input, output}: the prompt is templated, the output is the response.
    case sft
    /// Preference records {prompt, chosen_response, rejected_response}.
    case preference
}

/// What a run optimises (`train.objective`).
public enum TrainingObjective: String, Sendable, CaseIterable {
    /// Next-token cross-entropy on every token.
    case pretrain
    /// Cross-entropy on response tokens only, averaged over the global batch's response tokens.
    case sft
    /// Direct preference optimisation (TRL's sigmoid loss) against a frozen reference.
    case dpo
}

/// What happens to an example longer than `train.seq_length` (`data.overlong`).
public enum OverlongPolicy: String, Sendable, CaseIterable {
    /// Keep its first `train.seq_length` tokens (the response's end may be cut off).
    case truncate
    /// Leave it out.
    case skip
}

/// `[dpo]`: the preference objective's settings (read when `train.objective = "dpo"`).
public struct DPOConfig: ConfigSection, Sendable {
    /// β: how far the policy may move from the reference (TRL's default 0.1).
    public var beta = 0.1
    /// Label smoothing ε of the conservative DPO loss (0: plain sigmoid DPO).
    public var labelSmoothing = 0.0
    /// The reference model (a Hugging Face directory, GGUF or Kumo weights file; empty: `model.init`).
    public var reference = ""

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("dpo.beta", \.beta, help: "DPO beta (TRL's default 0.1)"),
            .value("dpo.label_smoothing", \.labelSmoothing, help: "conservative DPO label smoothing in [0, 0.5)"),
            .value("dpo.reference", \.reference, help: "reference model path (empty: model.init)"),
        ]
    }
}

extension RunConfig {
    /// Sequences one sample of the data is: 2 for DPO's pairs (chosen, rejected), else 1.
    public var rowsPerSample: Int { train.objective == .dpo ? 2 : 1 }

    /// Refuses a data format, objective and `[dpo]` combination that does not go together.
    func validatePostTraining() throws {
        let needs: [TrainingObjective: DataFormat] = [.pretrain: .text, .sft: .sft, .dpo: .preference]
        if needs[train.objective] != data.format {
            throw ConfigError(
                "train.objective = \"\(train.objective.rawValue)\" trains on data.format = \"\(needs[train.objective]!.rawValue)\" "
                    + "but data.format = \"\(data.format.rawValue)\"; set both (pretrain: text, sft: sft, dpo: preference)"
            )
        }
        if data.format != .text && data.path.isEmpty {
            throw ConfigError(
                "data.format = \"\(data.format.rawValue)\" reads JSONL records from data.path (data.sources and "
                    + "data.synthetic hold plain tokens)")
        }
        if data.resetAttention && data.format == .preference {
            throw ConfigError("data.reset_attention: preference pairs are never packed; remove the key")
        }
        if !(dpo.beta > 0) { throw ConfigError("dpo.beta = \(dpo.beta): must be positive") }
        if !(0..<0.5).contains(dpo.labelSmoothing) {
            throw ConfigError("dpo.label_smoothing = \(dpo.labelSmoothing): must lie in [0, 0.5)")
        }
        if train.objective == .dpo && int("parallel.pipeline") > 1 {
            throw ConfigError(
                "train.objective = \"dpo\" with parallel.pipeline > 1 is not supported yet; set parallel.pipeline = 1 "
                    + "(data and tensor parallelism and ZeRO work with DPO)")
        }
        if train.objective == .dpo && dpo.reference.isEmpty && modelSection.initPath == nil {
            throw ConfigError(
                "train.objective = \"dpo\" needs a reference model: set model.init (the reference by default) or dpo.reference"
            )
        }
    }
}
