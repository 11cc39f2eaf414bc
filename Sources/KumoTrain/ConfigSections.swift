import Foundation
import KumoCore
import KumoData
import KumoModel

/// `[data]`: where the training tokens come from.
public struct DataConfig: ConfigSection, Sendable {
    /// Seeded random tokens instead of a corpus.
    public var synthetic = false
    /// JSONL or text files (or directories of them), tokenized in memory.
    public var path: [String] = []
    /// The JSONL field that holds the text.
    public var textField = "text"
    /// The tokenizer of `path`: `byte`, a sentencepiece `.model` or whatever `loadTokenizer(model:)`
    /// takes (default with `model.init`: the init model's).
    public var tokenizer = "byte"
    /// Prepared datasets as written (`RunConfig.dataSources` holds them checked).
    public var sources: [[String: ConfigValue]] = []
    /// What the records of `path` hold.
    public var format = DataFormat.text
    /// The prompt template of `sft` and `preference` records.
    public var chatTemplate = InstructionTemplate.llmJP
    /// Several SFT examples per sequence (attention and positions reset at each example's start).
    public var packing = true
    /// What happens to an SFT or preference example longer than `train.seq_length`.
    public var overlong = OverlongPolicy.truncate
    /// Pretraining: positions and attention restart after every end-of-document token.
    public var resetAttention = false

    public init() {}

    /// The table list of `data.sources` (an empty list may have been written `[]`).
    private static func tables(_ value: ConfigValue) throws -> [[String: ConfigValue]] {
        switch value {
        case .tables(let v): return v
        case .strings(let v) where v.isEmpty: return []
        default: throw ConfigError("data.sources = \(value): expected a value of type tables")
        }
    }

    public static var fields: [ConfigField<Self>] {
        [
            .value("data.synthetic", \.synthetic, help: "seeded random tokens"),
            .value("data.path", \.path, help: "JSONL/text files or dirs"),
            .value("data.text_field", \.textField, help: "JSONL text field"),
            .value(
                "data.tokenizer", \.tokenizer,
                help: "tokenizer of data.path: byte, a .model, tokenizer.json, GGUF (model.init's if unset)"),
            .custom(
                "data.sources", \.sources, kind: .tables,
                help: "prepared datasets: [{prefix = \"P\", weight = W} or {prefix = \"P\", epochs = E}, ...]",
                encode: { .tables($0) }, decode: tables),
            .choice("data.format", \.format, help: "text|sft|preference: what the records of data.path hold") {
                "data.format = \"\($0)\": valid are \"text\", \"sft\" ({instruction, input, output}) and "
                    + "\"preference\" ({prompt, chosen_response, rejected_response})"
            },
            .choice(
                "data.chat_template", \.chatTemplate, help: "llm-jp|chatml|plain: prompt template of sft/preference"
            ) {
                "data.chat_template = \"\($0)\": valid are \(InstructionTemplate.names)"
            },
            .value("data.packing", \.packing, help: "sft: several examples per sequence, attention reset between"),
            .choice("data.overlong", \.overlong, help: "truncate|skip: examples longer than train.seq_length") {
                "data.overlong = \"\($0)\": valid are \"truncate\" and \"skip\""
            },
            .value(
                "data.reset_attention", \.resetAttention,
                help: "restart positions and attention after each end-of-document token"),
        ]
    }
}

/// `[train]`: batch shape, length, seed, threads, recomputation, precision and `[train.spike]`.
public struct TrainConfig: ConfigSection, Sendable {
    /// Optimizer steps.
    public var steps = 100
    /// Sequences per micro-batch.
    public var microBatchSize = 1
    /// Sequences per step (resolved to `microBatchSize` when not set).
    public var globalBatchSize = 0
    /// Tokens per sequence.
    public var seqLength = 256
    /// Seed of the initialisation and the data order.
    public var seed = 1234
    /// Threads as written (0: every core; see `RunConfig.threads`).
    public var threads = 0
    /// Whether blocks keep their activations or recompute them in backward.
    public var recompute = ActivationRecompute.none
    /// The precision of matrix products.
    public var precision = Precision.fp32
    /// The loss-spike guard.
    public var spike = SpikeSettings()
    /// What the run optimises.
    public var objective = TrainingObjective.pretrain

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("train.steps", \.steps, help: "optimizer steps"),
            .value("train.micro_batch_size", \.microBatchSize, help: "sequences per micro-batch"),
            .value("train.global_batch_size", \.globalBatchSize, derived: true, help: "sequences per step"),
            .value("train.seq_length", \.seqLength, help: "tokens per sequence"),
            .value("train.seed", \.seed, help: "seed of init and data"),
            .value("train.threads", \.threads, help: "threads (0: all cores)"),
            .choice(
                "train.recompute", \.recompute,
                help:
                    "none|full|stage: full drops each block's activations after forward and recomputes them in "
                    + "backward; stage keeps only each micro-batch's stage input and re-runs the stage's forward "
                    + "before its backward"
            ) {
                "train.recompute = \"\($0)\": valid are \"none\" (keep every block's activations), "
                    + "\"full\" (recompute them in backward, to save memory) and \"stage\" (keep only each "
                    + "micro-batch's stage input and re-run the stage's forward before its backward, to save "
                    + "the most under pipeline parallelism)"
            },
            .choice(
                "train.precision", \.precision,
                help:
                    "fp32|bf16: bf16 runs matrix products with bf16 operands and fp32 accumulation (fp32 master weights)"
            ) {
                "train.precision = \"\($0)\": valid are \"fp32\" and \"bf16\" (bf16 matrix "
                    + "products with fp32 accumulation and fp32 master weights)"
            },
            .choice("train.objective", \.objective, help: "pretrain|sft|dpo") {
                "train.objective = \"\($0)\": valid are \"pretrain\", \"sft\" and \"dpo\""
            },
        ] + SpikeSettings.fields.map { $0.lifted(\.spike) }
    }
}

/// `[optim]`: AdamW and the learning-rate schedule.
public struct OptimConfig: ConfigSection, Sendable {
    /// Peak learning rate.
    public var lr = 3e-4
    /// Final learning rate (resolved to `lr / 10` when not set).
    public var minLR = 0.0
    /// Linear warmup steps.
    public var warmupSteps = 0
    /// End of the cosine decay (resolved to `train.steps` when not set).
    public var decaySteps = 0
    public var weightDecay = 0.1
    public var beta1 = 0.9
    public var beta2 = 0.95
    public var eps = 1e-8
    /// Global gradient-norm clip (0: off).
    public var gradClip = 1.0

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("optim.lr", \.lr, help: "peak learning rate"),
            .value("optim.min_lr", \.minLR, derived: true, help: "final lr (default lr/10)"),
            .value("optim.warmup_steps", \.warmupSteps, help: "linear warmup steps"),
            .value("optim.decay_steps", \.decaySteps, derived: true, help: "end of cosine (default steps)"),
            .value("optim.weight_decay", \.weightDecay, help: "AdamW decay"),
            .value("optim.beta1", \.beta1, help: "AdamW beta1"),
            .value("optim.beta2", \.beta2, help: "AdamW beta2"),
            .value("optim.eps", \.eps, help: "AdamW epsilon"),
            .value("optim.grad_clip", \.gradClip, help: "global norm clip (0: off)"),
        ]
    }

    /// The learning-rate schedule.
    public var schedule: LRSchedule {
        LRSchedule(maxLR: lr, minLR: minLR, warmupSteps: warmupSteps, decaySteps: decaySteps)
    }

    /// The AdamW hyperparameters.
    public var adam: AdamWSettings {
        AdamWSettings(
            beta1: Float(beta1), beta2: Float(beta2), eps: Float(eps), weightDecay: Float(weightDecay),
            gradClip: gradClip)
    }
}

/// `[checkpoint]`: how often checkpoints are written and how many are kept.
public struct CheckpointConfig: ConfigSection, Sendable {
    /// Steps between checkpoints (0: none).
    public var every = 0
    /// Newest complete checkpoints kept (0: all).
    public var keep = 0

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("checkpoint.every", \.every, help: "steps between checkpoints (0: none)"),
            .value("checkpoint.keep", \.keep, help: "newest complete ones kept (0: all)"),
        ]
    }
}

/// `[log]`: metrics lines and the samples printed after training.
public struct LogConfig: ConfigSection, Sendable {
    /// Steps between metrics lines.
    public var every = 1
    /// Prompts sampled after training.
    public var samples: [String] = []
    /// Tokens generated per sample.
    public var sampleTokens = 100
    /// Sampling temperature.
    public var temperature = 0.8

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("log.every", \.every, help: "steps between metrics lines"),
            .value("log.samples", \.samples, help: "prompts sampled after training"),
            .value("log.sample_tokens", \.sampleTokens, help: "tokens per sample"),
            .value("log.temperature", \.temperature, help: "sampling temperature"),
        ]
    }
}

/// `[eval]`: evaluations run during training.
public struct EvalConfig: ConfigSection, Sendable {
    /// `kumo eval` task names.
    public var tasks: [String] = []
    /// Steps between evaluations (0: none).
    public var interval = 0
    /// Examples per task (0: all).
    public var limit = 0
    /// The JGLUE v1.3 directory.
    public var dataDir = "."
    /// Few-shot examples per prompt.
    public var numFewshot = 0
    /// Perplexity corpus (JSONL with a `text` field), or sft_loss's SFT records (templated with `data.chat_template`).
    public var corpus = ""
    /// Perplexity window (0: `train.seq_length`).
    public var contextLength = 0
    /// Tokenizer of the prompts (empty: the data's).
    public var tokenizer = ""

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value(
                "eval.tasks", \.tasks,
                help: "kumo eval tasks run during training: jcommonsenseqa, jnli, jsts, jsquad, perplexity, sft_loss"),
            .value("eval.interval", \.interval, help: "steps between evaluations (0: none)"),
            .value("eval.limit", \.limit, help: "examples per task (0: all)"),
            .value("eval.data_dir", \.dataDir, help: "JGLUE v1.3 directory"),
            .value("eval.num_fewshot", \.numFewshot, help: "few-shot examples per prompt"),
            .value("eval.corpus", \.corpus, help: "perplexity: JSONL with \"text\"; sft_loss: SFT records"),
            .value(
                "eval.context_length", \.contextLength,
                help: "perplexity window, scored by halves (0: train.seq_length)"),
            .value(
                "eval.tokenizer", \.tokenizer,
                help: "tokenizer of the prompts (empty: the data's; needed with synthetic data)"),
        ]
    }
}
