import Foundation
import KumoData
import KumoEval
import KumoInterop
import KumoModel
import KumoTrain

/// The `[eval]` section of a training run: the tasks `kumo eval` runs, applied to the model in training.
enum TrainingEval {
    /// A closure that evaluates the model it is given (of `config.model`'s shape) on `eval.tasks`
    /// and returns `eval.<task>.<metric>` → value, or nil when `eval.interval` is 0. `dataTokenizer`
    /// is the training data's tokenizer (nil for synthetic data), used unless `eval.tokenizer`
    /// names another.
    static func make(config: RunConfig, dataTokenizer: (any Tokenizer)?) throws -> (
        (Int, LlamaModel) throws -> [String: Double]
    )? {
        guard config.eval.interval > 0 else { return nil }
        let tasks = try config.eval.tasks.map { name in
            guard let task = EvalTask(rawValue: name) else {
                throw ConfigError(
                    "eval.tasks: unknown task \"\(name)\"; valid are "
                        + EvalTask.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return task
        }
        let tokenizer: any Tokenizer
        if !config.eval.tokenizer.isEmpty {
            tokenizer = try loadTokenizer(model: config.eval.tokenizer)
        } else if let dataTokenizer {
            tokenizer = dataTokenizer
        } else {
            throw ConfigError("eval.tasks: synthetic data has no tokenizer; set eval.tokenizer (\"byte\" or a .model)")
        }
        if tokenizer.vocabSize > config.model.vocabSize {
            throw ConfigError(
                "eval.tokenizer has \(tokenizer.vocabSize) ids but model.vocab_size is \(config.model.vocabSize)")
        }
        if tasks.contains(.perplexity) && config.eval.corpus.isEmpty {
            throw ConfigError("eval.tasks has perplexity: set eval.corpus to a JSONL file with a \"text\" field")
        }
        if tasks.contains(.sftLoss) && config.eval.corpus.isEmpty {
            throw ConfigError(
                "eval.tasks has sft_loss: set eval.corpus to a JSONL file of {instruction, input, output}")
        }
        var options = EvalOptions()
        options.dataDir = config.eval.dataDir
        options.numFewshot = config.eval.numFewshot
        options.limit = config.eval.limit > 0 ? config.eval.limit : nil
        options.corpus = config.eval.corpus
        options.chatTemplate = config.data.chatTemplate
        let context = config.eval.contextLength > 0 ? config.eval.contextLength : config.seqLength
        options.contextLength = min(context, config.model.maxPositionEmbeddings)
        options.stride = max(1, options.contextLength / 2)
        try checkFiles(tasks, options)
        return { _, model in
            let evaluator = Evaluator(scorer: LogLikelihoodScorer(model: model), tokenizer: tokenizer, options: options)
            var scores: [String: Double] = [:]
            for task in tasks {
                let result: TaskResult
                do {
                    result = try evaluator.run(task)
                } catch let error as EvalDataError {
                    throw ConfigError("[eval] \(task.rawValue): \(error.description)")
                }
                for (metric, value) in result.metrics { scores["eval.\(task.rawValue).\(metric)"] = value }
            }
            return scores
        }
    }

    /// Refuses at start-up what the first evaluation would fail to read: each JGLUE task's
    /// validation file under `eval.data_dir`, the `eval.corpus` of perplexity and sft_loss.
    private static func checkFiles(_ tasks: [EvalTask], _ options: EvalOptions) throws {
        for task in tasks {
            if task == .perplexity || task == .sftLoss {
                let corpus = options.corpus ?? ""
                guard FileManager.default.isReadableFile(atPath: corpus) else {
                    throw ConfigError(
                        "eval.corpus = \"\(corpus)\": no such readable file (the \(task.rawValue) task reads it)")
                }
                continue
            }
            let file = options.file(task, "valid")
            guard FileManager.default.isReadableFile(atPath: file) else {
                let folder = ((file as NSString).deletingLastPathComponent as NSString).lastPathComponent
                throw ConfigError(
                    "[eval] \(task.rawValue): \(file) is missing: set eval.data_dir (now \"\(options.dataDir)\") to the "
                        + "directory holding \(folder)/, the one `kumo eval --data-dir` takes")
            }
        }
    }
}
