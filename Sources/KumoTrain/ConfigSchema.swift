/// Every configuration key Kumo reads, with its type, default and meaning.
public enum ConfigSchema {
    /// The kind of value a key takes.
    public enum Kind: String, Sendable {
        case int, double, bool, string, strings, tables
        /// Whether `value` is of this kind (an integer is accepted where a float is expected).
        func accepts(_ value: ConfigValue) -> Bool {
            switch (self, value) {
            case (.int, .int), (.double, .double), (.double, .int), (.bool, .bool), (.string, .string),
                (.strings, .strings), (.strings, .string), (.tables, .tables), (.tables, .strings([])):
                return true
            default: return false
            }
        }
    }

    /// One key: `section.name`, its kind, its default (nil: no default, derived or required).
    public struct Key: Sendable {
        public let name: String
        public let kind: Kind
        public let defaultValue: ConfigValue?
        public let help: String
    }

    /// The sections in the order a resolved config is written.
    public static let sections = ["model", "data", "train", "optim", "parallel", "checkpoint", "log", "eval"]

    /// All keys.
    public static let keys: [Key] = [
        Key(name: "model.preset", kind: .string, defaultValue: nil, help: "base shape: " + presetNames),
        Key(name: "model.vocab_size", kind: .int, defaultValue: nil, help: "vocabulary size"),
        Key(name: "model.hidden_size", kind: .int, defaultValue: nil, help: "model width"),
        Key(name: "model.intermediate_size", kind: .int, defaultValue: nil, help: "SwiGLU FFN width"),
        Key(name: "model.num_hidden_layers", kind: .int, defaultValue: nil, help: "number of blocks"),
        Key(name: "model.num_attention_heads", kind: .int, defaultValue: nil, help: "query heads"),
        Key(name: "model.num_key_value_heads", kind: .int, defaultValue: nil, help: "key/value heads (GQA)"),
        Key(name: "model.max_position_embeddings", kind: .int, defaultValue: nil, help: "longest sequence"),
        Key(name: "model.rope_theta", kind: .double, defaultValue: nil, help: "RoPE base"),
        Key(name: "model.rms_norm_eps", kind: .double, defaultValue: nil, help: "RMSNorm epsilon"),
        Key(name: "model.tie_word_embeddings", kind: .bool, defaultValue: nil, help: "share embedding and output"),
        Key(name: "model.parallel_layers", kind: .bool, defaultValue: nil, help: "PLaMo/GPT-J parallel block"),
        Key(name: "model.init_std", kind: .double, defaultValue: .double(0.02), help: "weight init std"),
        Key(name: "data.synthetic", kind: .bool, defaultValue: .bool(false), help: "seeded random tokens"),
        Key(name: "data.path", kind: .strings, defaultValue: .strings([]), help: "JSONL/text files or dirs"),
        Key(name: "data.text_field", kind: .string, defaultValue: .string("text"), help: "JSONL text field"),
        Key(
            name: "data.tokenizer", kind: .string, defaultValue: .string("byte"),
            help: "tokenizer of data.path: byte or a sentencepiece .model"),
        Key(
            name: "data.sources", kind: .tables, defaultValue: .tables([]),
            help: "prepared datasets: [{prefix = \"P\", weight = W} or {prefix = \"P\", epochs = E}, ...]"),
        Key(name: "train.steps", kind: .int, defaultValue: .int(100), help: "optimizer steps"),
        Key(name: "train.micro_batch_size", kind: .int, defaultValue: .int(1), help: "sequences per micro-batch"),
        Key(name: "train.global_batch_size", kind: .int, defaultValue: nil, help: "sequences per step"),
        Key(name: "train.seq_length", kind: .int, defaultValue: .int(256), help: "tokens per sequence"),
        Key(name: "train.seed", kind: .int, defaultValue: .int(1234), help: "seed of init and data"),
        Key(name: "train.threads", kind: .int, defaultValue: .int(0), help: "threads (0: all cores)"),
        Key(
            name: "train.recompute", kind: .string, defaultValue: .string("none"),
            help: "none|full: full drops each block's activations after forward and recomputes them in backward"),
        Key(
            name: "train.precision", kind: .string, defaultValue: .string("fp32"),
            help: "fp32|bf16: bf16 runs matrix products with bf16 operands and fp32 accumulation (fp32 master weights)"),
        Key(name: "train.spike.enabled", kind: .bool, defaultValue: .bool(false), help: "loss-spike guard on"),
        Key(name: "train.spike.window", kind: .int, defaultValue: .int(50), help: "steps in the running medians"),
        Key(name: "train.spike.min_history", kind: .int, defaultValue: .int(10), help: "steps before ratio tests"),
        Key(name: "train.spike.threshold", kind: .double, defaultValue: .double(2), help: "spike: loss / median loss"),
        Key(
            name: "train.spike.grad_norm_threshold", kind: .double, defaultValue: .double(0),
            help: "spike: grad norm / median grad norm (0: off)"),
        Key(name: "train.spike.policy", kind: .string, defaultValue: .string("skip"), help: "skip|rollback"),
        Key(name: "train.spike.lr_factor", kind: .double, defaultValue: .double(1), help: "lr factor per rollback"),
        Key(name: "train.spike.max_skips_in_row", kind: .int, defaultValue: .int(10), help: "stop after N skips"),
        Key(name: "train.spike.max_rollbacks", kind: .int, defaultValue: .int(5), help: "stop after N rollbacks"),
        Key(
            name: "train.spike.debug_inject", kind: .strings, defaultValue: .strings([]),
            help: "test hook: [\"BATCH:FACTOR\"] scales that batch's loss and gradients"),
        Key(name: "optim.lr", kind: .double, defaultValue: .double(3e-4), help: "peak learning rate"),
        Key(name: "optim.min_lr", kind: .double, defaultValue: nil, help: "final lr (default lr/10)"),
        Key(name: "optim.warmup_steps", kind: .int, defaultValue: .int(0), help: "linear warmup steps"),
        Key(name: "optim.decay_steps", kind: .int, defaultValue: nil, help: "end of cosine (default steps)"),
        Key(name: "optim.weight_decay", kind: .double, defaultValue: .double(0.1), help: "AdamW decay"),
        Key(name: "optim.beta1", kind: .double, defaultValue: .double(0.9), help: "AdamW beta1"),
        Key(name: "optim.beta2", kind: .double, defaultValue: .double(0.95), help: "AdamW beta2"),
        Key(name: "optim.eps", kind: .double, defaultValue: .double(1e-8), help: "AdamW epsilon"),
        Key(name: "optim.grad_clip", kind: .double, defaultValue: .double(1.0), help: "global norm clip (0: off)"),
        Key(name: "parallel.tensor", kind: .int, defaultValue: .int(1), help: "tensor-parallel size"),
        Key(
            name: "parallel.sequence", kind: .bool, defaultValue: .bool(false),
            help: "sequence parallelism: norms and residuals split by rows over the tensor group"),
        Key(name: "parallel.pipeline", kind: .int, defaultValue: .int(1), help: "pipeline-parallel size"),
        Key(name: "parallel.schedule", kind: .string, defaultValue: .string("1f1b"), help: "pipeline: 1f1b|gpipe"),
        Key(name: "parallel.zero_stage", kind: .int, defaultValue: .int(0), help: "ZeRO stage 0-3"),
        Key(name: "parallel.shard_group_size", kind: .int, defaultValue: .int(0), help: "hybrid shard group"),
        Key(name: "parallel.quantized_allgather", kind: .string, defaultValue: .string("none"), help: "none|bf16|int8"),
        Key(
            name: "parallel.comm_timeout_s", kind: .double, defaultValue: .double(300),
            help: "seconds a collective may wait before the job is aborted"),
        Key(name: "parallel.bucket_mib", kind: .double, defaultValue: .double(4), help: "gradient all-reduce bucket"),
        Key(name: "checkpoint.every", kind: .int, defaultValue: .int(0), help: "steps between checkpoints (0: none)"),
        Key(name: "checkpoint.keep", kind: .int, defaultValue: .int(0), help: "newest complete ones kept (0: all)"),
        Key(name: "log.every", kind: .int, defaultValue: .int(1), help: "steps between metrics lines"),
        Key(name: "log.samples", kind: .strings, defaultValue: .strings([]), help: "prompts sampled after training"),
        Key(name: "log.sample_tokens", kind: .int, defaultValue: .int(100), help: "tokens per sample"),
        Key(name: "log.temperature", kind: .double, defaultValue: .double(0.8), help: "sampling temperature"),
        Key(
            name: "eval.tasks", kind: .strings, defaultValue: .strings([]),
            help: "kumo eval tasks run during training: jcommonsenseqa, jnli, jsts, jsquad, perplexity"),
        Key(name: "eval.interval", kind: .int, defaultValue: .int(0), help: "steps between evaluations (0: none)"),
        Key(name: "eval.limit", kind: .int, defaultValue: .int(0), help: "examples per task (0: all)"),
        Key(name: "eval.data_dir", kind: .string, defaultValue: .string("."), help: "JGLUE v1.3 directory"),
        Key(name: "eval.num_fewshot", kind: .int, defaultValue: .int(0), help: "few-shot examples per prompt"),
        Key(name: "eval.corpus", kind: .string, defaultValue: .string(""), help: "perplexity: JSONL with \"text\""),
        Key(
            name: "eval.context_length", kind: .int, defaultValue: .int(0),
            help: "perplexity window, scored by halves (0: train.seq_length)"),
        Key(
            name: "eval.tokenizer", kind: .string, defaultValue: .string(""),
            help: "tokenizer of the prompts (empty: the data's; needed with synthetic data)"),
    ]

    static let presetNames = "tiny, small, 150m, 440m, 980m, 1.8b, 3.7b, 7.2b, 13b, 172b"

    /// The key named `name`, if Kumo knows it.
    public static func key(_ name: String) -> Key? { keys.first { $0.name == name } }

    /// Names of the keys of a section, for error messages.
    public static func keyNames(in section: String) -> [String] {
        keys.filter { $0.name.hasPrefix(section + ".") }.map { String($0.name.dropFirst(section.count + 1)) }
    }
}
