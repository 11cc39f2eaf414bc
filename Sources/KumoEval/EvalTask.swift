import Foundation
import KumoCore
import KumoData

/// The tasks `kumo eval` runs.
public enum EvalTask: String, CaseIterable, Sendable {
    case jcommonsenseqa, jnli, jsts, jsquad, perplexity, preference
    /// The response loss on SFT records (`--corpus`, `--chat-template`).
    case sftLoss = "sft_loss"

    /// Version of the task's scoring code; written to every output with the template version.
    public var version: String { "1.0" }

    /// The JGLUE v1.3 directory under --data-dir (perplexity and sft_loss read --corpus instead).
    var directory: String { "\(rawValue)-v1.3" }
}

/// Settings of one evaluation run.
public struct EvalOptions: Sendable {
    /// Directory holding the JGLUE v1.3 task directories.
    public var dataDir: String = "."
    /// Few-shot examples prepended to every prompt.
    public var numFewshot: Int = 0
    /// Seed of the few-shot selection.
    public var seed: UInt64 = 1234
    /// Evaluate at most this many examples per task (nil: all).
    public var limit: Int?
    /// JSQuAD: most tokens generated per answer.
    public var maxNewTokens: Int = 32
    /// Perplexity: JSONL corpus with a "text" field; sft_loss: SFT records {instruction, input, output}.
    public var corpus: String?
    /// Perplexity: tokens in each scoring window.
    public var contextLength: Int = 512
    /// Perplexity: tokens each window advances by (≤ contextLength).
    public var stride: Int = 256
    /// Preference (and SFT) tasks: how the prompt is templated.
    public var chatTemplate = InstructionTemplate.llmJP
    /// Preference: β of the implicit reward and the DPO loss.
    public var beta = 0.1

    /// Default settings.
    public init() {}

    /// The JGLUE v1.3 file of `task`'s `split` ("train" or "valid") under `dataDir`.
    public func file(_ task: EvalTask, _ split: String) -> String {
        "\(dataDir)/\(task.directory)/\(split)-v1.3.json"
    }
}

/// Scores of one task.
public struct TaskResult: Sendable {
    /// The task.
    public var task: EvalTask
    /// Metric name → value, with `<metric>_stderr` beside each metric.
    public var metrics: [String: Double]
    /// Metrics shown first, in order (the rest are their standard errors and baselines).
    public var headline: [String]
    /// Examples evaluated.
    public var examples: Int
    /// Files read, for their hashes.
    public var files: [String]
    /// Wall-clock seconds.
    public var seconds: Double = 0
}

/// Deterministic few-shot selection.
public enum FewShot {
    /// `k` examples drawn by `seed` from `train`, or, without a train split, from `validation`, which
    /// then loses them; returns the shots and the examples left to evaluate.
    public static func split<T>(validation: [T], train: [T]?, k: Int, seed: UInt64) -> (shots: [T], evaluate: [T]) {
        guard k > 0 else { return ([], validation) }
        let pool = train ?? validation
        let chosen = Array(shuffledIndices(pool.count, seed: seed).prefix(k))
        guard train == nil else { return (chosen.map { pool[$0] }, validation) }
        let taken = Set(chosen)
        return (chosen.map { pool[$0] }, validation.indices.filter { !taken.contains($0) }.map { validation[$0] })
    }

    /// 0..<count in a Fisher–Yates order fixed by `seed` (independent of the standard library's shuffle).
    static func shuffledIndices(_ count: Int, seed: UInt64) -> [Int] {
        var rng = SeededRandom(seed: seed)
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return order
    }

    /// The prompt prefix: each shot's prompt followed by its gold answer, separated by blank lines.
    public static func prefix(_ shots: [(prompt: String, answer: String)]) -> String {
        shots.map { $0.prompt + $0.answer + "\n\n" }.joined()
    }
}
