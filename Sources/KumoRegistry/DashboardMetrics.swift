import Foundation

/// What the dashboard's charts plot along x: the step, the tokens trained on (step × tokens per
/// step) or the wall-clock time since the run started (`elapsed_s`).
public enum XAxis: String, CaseIterable, Sendable {
    case step, tokens, time

    /// The axis title.
    public var label: String {
        switch self {
        case .step: return "step"
        case .tokens: return "tokens"
        case .time: return "time (s)"
        }
    }
}

/// A run's metrics.jsonl lines as numbers: its training lines and its evaluation lines (those with
/// `eval_s`, whose other numeric keys but `step` are scores).
public struct RunMetrics: Sendable {
    /// One line's step and numeric values (null and non-numeric values left out).
    public struct Row: Sendable {
        public var step: Int
        public var values: [String: Double]
    }

    public let train: [Row]
    public let eval: [Row]
    /// Tokens per step: the summary's tokens over its steps.
    public let tokensPerStep: Double
    /// `elapsed_s` of each training step, to place evaluations on the time axis.
    private let elapsedByStep: [Int: Double]

    /// Parses `lines` (lines without a step, or not JSON objects, are skipped) of the run `summary` describes.
    public init(lines: [String], summary: RunSummary) {
        var train: [Row] = []
        var eval: [Row] = []
        for line in lines {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                let step = (object["step"] as? NSNumber)?.intValue
            else { continue }
            var values: [String: Double] = [:]
            for (key, value) in object { values[key] = (value as? NSNumber)?.doubleValue }
            if values["eval_s"] == nil {
                train.append(Row(step: step, values: values))
            } else {
                eval.append(Row(step: step, values: values))
            }
        }
        self.train = train
        self.eval = eval
        tokensPerStep = summary.steps > 0 ? Double(summary.tokens) / Double(summary.steps) : 0
        elapsedByStep = Dictionary(train.compactMap { r in r.values["elapsed_s"].map { (r.step, $0) } }) { $1 }
    }

    /// The keys of training lines that start with `prefix` (`memory.`), sorted.
    public func trainKeys(prefix: String) -> [String] {
        Set(train.flatMap { $0.values.keys.filter { $0.hasPrefix(prefix) } }).sorted()
    }

    /// The names of the evaluation scores, sorted.
    public var evalScores: [String] {
        Set(eval.flatMap { $0.values.keys.filter { $0 != "step" && $0 != "eval_s" } }).sorted()
    }

    /// The finite values of `key` in the training (or evaluation) lines, against `x`.
    public func points(_ key: String, evaluation: Bool = false, x: XAxis) -> [ChartPoint] {
        (evaluation ? eval : train).compactMap { row in
            guard let y = row.values[key], y.isFinite, let x = position(row, x) else { return nil }
            return ChartPoint(x: x, y: y)
        }
    }

    /// Where `row` lies along `x`; nil for a time the run did not log.
    private func position(_ row: Row, _ x: XAxis) -> Double? {
        switch x {
        case .step: return Double(row.step)
        case .tokens: return Double(row.step) * tokensPerStep
        case .time: return row.values["elapsed_s"] ?? elapsedByStep[row.step]
        }
    }
}
