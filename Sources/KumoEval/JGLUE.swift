import Foundation
import KumoCore

/// An error reading an evaluation file: names the file and what to do.
public struct EvalDataError: UserFacingError {
    /// The message.
    public var description: String

    /// An error about `path`.
    public init(_ path: String, _ message: String) { description = "\(path): \(message)" }
}

/// One example scored by the log-likelihood of each of its continuations.
public struct ChoiceExample: Equatable, Sendable {
    /// The prompt for this example (few-shot examples are prepended later).
    public var context: String
    /// The candidate continuations.
    public var choices: [String]
    /// Index of the gold choice (JCommonsenseQA, JNLI) or -1.
    public var label: Int
    /// The gold score (JSTS), else 0.
    public var score: Double
}

/// One extractive question-answering example.
public struct QAExample: Equatable, Sendable {
    /// The prompt for this example.
    public var context: String
    /// Gold answers; the example scores its best match.
    public var answers: [String]
}

/// Readers of JGLUE v1.3 files as published, and their prompt templates (docs/eval.md).
public enum JGLUE {
    /// Version of the prompt templates below; written to every output.
    public static let templateVersion = "0.1"
    /// JNLI's label words, in label order.
    public static let nliLabels = ["entailment", "contradiction", "neutral"]
    /// The words whose log-likelihoods decide JNLI.
    public static let nliWords = ["含意", "矛盾", "中立"]

    /// The JSON object on each non-empty line of `path`.
    static func jsonLines(_ path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvalDataError(path, "cannot read the file (check --data-dir)")
        }
        var result: [[String: Any]] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw EvalDataError(path, "line \(number + 1) is not a JSON object")
            }
            result.append(object)
        }
        return result
    }

    private static func field<T>(_ object: [String: Any], _ key: String, _ path: String, _ line: Int) throws -> T {
        guard let value = object[key] as? T else {
            throw EvalDataError(path, "line \(line + 1): missing or mistyped \"\(key)\"")
        }
        return value
    }

    /// JCommonsenseQA: `question`, `choice0`…`choice4`, `label`.
    public static func commonsenseQA(_ path: String) throws -> [ChoiceExample] {
        try jsonLines(path).enumerated().map { i, o in
            let choices: [String] = try (0..<5).map { try field(o, "choice\($0)", path, i) }
            let question: String = try field(o, "question", path, i)
            return ChoiceExample(
                context: "質問：\(question)\n選択肢：\(choices.joined(separator: "、"))\n回答：", choices: choices,
                label: try field(o, "label", path, i), score: 0)
        }
    }

    /// JNLI: `sentence1` (premise), `sentence2` (hypothesis), `label` (entailment, contradiction, neutral).
    public static func nli(_ path: String) throws -> [ChoiceExample] {
        try jsonLines(path).enumerated().map { i, o in
            let label: String = try field(o, "label", path, i)
            guard let index = nliLabels.firstIndex(of: label) else {
                throw EvalDataError(path, "line \(i + 1): unknown label \"\(label)\"")
            }
            let premise: String = try field(o, "sentence1", path, i)
            let hypothesis: String = try field(o, "sentence2", path, i)
            return ChoiceExample(
                context: "前提：\(premise)\n仮説：\(hypothesis)\n関係（含意、矛盾、中立）：", choices: nliWords, label: index,
                score: 0)
        }
    }

    /// JSTS: `sentence1`, `sentence2`, `label` (similarity 0–5); the choices are "0"…"5".
    public static func sts(_ path: String) throws -> [ChoiceExample] {
        try jsonLines(path).enumerated().map { i, o in
            let s1: String = try field(o, "sentence1", path, i)
            let s2: String = try field(o, "sentence2", path, i)
            let score: Double = try field(o, "label", path, i)
            return ChoiceExample(
                context: "文1：\(s1)\n文2：\(s2)\n類似度（0〜5）：", choices: (0...5).map(String.init),
                label: Int(score.rounded()), score: score)
        }
    }

    /// JSQuAD (SQuAD JSON): every question of every paragraph, with its answers.
    public static func squad(_ path: String) throws -> [QAExample] {
        guard let data = FileManager.default.contents(atPath: path),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let articles = root["data"] as? [[String: Any]]
        else { throw EvalDataError(path, "expected SQuAD JSON with a \"data\" list (check --data-dir)") }
        var result: [QAExample] = []
        for article in articles {
            for paragraph in article["paragraphs"] as? [[String: Any]] ?? [] {
                guard let context = paragraph["context"] as? String else {
                    throw EvalDataError(path, "a paragraph has no \"context\"")
                }
                for qa in paragraph["qas"] as? [[String: Any]] ?? [] {
                    guard let question = qa["question"] as? String, let answers = qa["answers"] as? [[String: Any]]
                    else { throw EvalDataError(path, "a question has no \"question\" or \"answers\"") }
                    result.append(
                        QAExample(
                            context: "文章：\(context)\n質問：\(question)\n回答：",
                            answers: answers.compactMap { $0["text"] as? String }))
                }
            }
        }
        return result
    }
}
