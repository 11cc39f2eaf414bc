import ArgumentParser
import Foundation
import KumoData
import KumoEval
import KumoInference
import KumoInterop

/// `kumo eval`: JGLUE tasks and perplexity of any model Kumo reads.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on JGLUE (JCommonsenseQA, JNLI, JSTS, JSQuAD), perplexity and SFT response loss.",
        discussion: """
            Prompt templates and metrics are described in docs/eval.md. --data-dir holds the JGLUE v1.3 \
            directories as published (jcommonsenseqa-v1.3/valid-v1.3.json, ...). Few-shot examples come from \
            the train split (or, without one, from the validation split, which then loses them), chosen by \
            --seed. The perplexity task reads --corpus (JSONL with a "text" field); sft_loss reads --corpus as \
            SFT records ({instruction, input, output}) templated with --chat-template and reports the mean \
            negative log-likelihood of the response tokens (EOS included); preference reads --corpus as \
            pairs ({prompt, chosen_response, rejected_response}) templated with --chat-template.
            """)

    @OptionGroup var model: ModelOption

    @Option(
        help: "Tokenizer: a sentencepiece .model, a tokenizer.json, a GGUF file or `byte` (default: the GGUF's own).")
    var tokenizer: String?

    @Option(help: "Comma-separated tasks: \(EvalTask.allCases.map(\.rawValue).joined(separator: ",")).")
    var tasks: String = "jcommonsenseqa,jnli,jsts"

    @Option(help: "Directory holding the JGLUE v1.3 task directories.")
    var dataDir: String = "."

    @Option(help: "Few-shot examples per prompt.")
    var numFewshot: Int = 0

    @Option(help: "Seed of the few-shot selection.")
    var seed: UInt64 = 1234

    @Option(help: "Evaluate at most N examples per task.")
    var limit: Int?

    @Option(help: "JSQuAD: most tokens generated per answer.")
    var maxNewTokens: Int = 32

    @Option(help: "Perplexity: JSONL corpus with a \"text\" field; sft_loss: JSONL of {instruction, input, output}.")
    var corpus: String?

    @Option(help: "sft_loss and preference: prompt template, one of \(InstructionTemplate.names).")
    var chatTemplate: String = InstructionTemplate.llmJP.rawValue

    @Option(help: "Perplexity: tokens per scoring window.")
    var contextLength: Int = 512

    @Option(help: "Perplexity: tokens each window advances by (at most --context-length).")
    var stride: Int = 256

    @Option(help: "Write the results as JSON here.")
    var output: String?

    @Option(help: "Write every prompt, its choices and Kumo's scores as JSON lines here.")
    var dumpPrompts: String?

    @Option(help: "Preference: reference model of the implicit rewards and the DPO loss.")
    var refModel: String?

    @Option(help: "Preference: DPO beta of the implicit rewards and the loss.")
    var beta: Double = 0.1

    func validate() throws {
        for name in tasks.split(separator: ",") where EvalTask(rawValue: String(name)) == nil {
            throw ValidationError("--tasks: unknown task '\(name)'")
        }
        guard numFewshot >= 0, (limit ?? 1) > 0, maxNewTokens > 0 else {
            throw ValidationError("--num-fewshot must be ≥ 0, --limit and --max-new-tokens > 0")
        }
        guard InstructionTemplate(rawValue: chatTemplate) != nil else {
            throw ValidationError("--chat-template '\(chatTemplate)': valid are \(InstructionTemplate.names)")
        }
        guard contextLength > 1, stride > 0, stride <= contextLength else {
            throw ValidationError("--stride must be in 1...--context-length and --context-length > 1")
        }
        guard beta > 0 else { throw ValidationError("--beta must be positive") }
    }

    func run() throws {
        let m = try model.load()
        let tokenizerPath = tokenizer ?? model.model
        let tok = try loadTokenizer(model: tokenizerPath)
        try ServedModel.checkFits(tok, source: tokenizerPath, model: m, path: model.model)
        var options = EvalOptions()
        options.dataDir = dataDir
        options.numFewshot = numFewshot
        options.seed = seed
        options.limit = limit
        options.maxNewTokens = maxNewTokens
        options.corpus = corpus
        options.chatTemplate = InstructionTemplate(rawValue: chatTemplate)!
        options.contextLength = min(contextLength, m.config.maxPositionEmbeddings)
        options.stride = min(stride, options.contextLength)
        options.beta = beta
        let evaluator = Evaluator(scorer: LogLikelihoodScorer(model: m), tokenizer: tok, options: options)
        if let refModel {
            let reference = try loadModelReportingErrors(path: refModel)
            try ServedModel.checkFits(tok, source: tokenizerPath, model: reference, path: refModel)
            evaluator.referenceScorer = LogLikelihoodScorer(model: reference)
        }
        var dump: FileHandle?
        if let dumpPrompts {
            FileManager.default.createFile(atPath: dumpPrompts, contents: nil)
            dump = FileHandle(forWritingAtPath: dumpPrompts)
            evaluator.promptSink = { object in
                if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                    dump?.write(data + Data("\n".utf8))
                }
            }
        }
        var results: [TaskResult] = []
        for name in tasks.split(separator: ",") {
            let task = EvalTask(rawValue: String(name))!
            let bar = ProgressBar()
            evaluator.progress = { bar.update(done: $0, total: $1, caption: "\(task.rawValue) \($0)/\($1)") }
            results.append(try evaluator.run(task))
            bar.finish()
        }
        try dump?.close()
        print(EvalReport.table(results))
        if let output {
            let json = EvalReport.json(results: results, model: model.model, tokenizer: tokenizerPath, options: options)
            let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            guard FileManager.default.createFile(atPath: output, contents: data) else {
                throw ValidationFailure("--output \(output): cannot write the file")
            }
        }
    }
}
