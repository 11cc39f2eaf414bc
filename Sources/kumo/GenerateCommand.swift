import ArgumentParser
import Foundation
import KumoCore
import KumoData
import KumoInference
import KumoInterop

/// Options shared by `kumo generate` and `kumo serve`: the model, its tokenizer, threads and weights.
struct ServingOptions: ParsableArguments {
    @Option(help: "A Hugging Face LLaMA or Mixtral directory, a GGUF file (llama architecture) or a Kumo weights file.")
    var model: String

    @Option(help: "Tokenizer (default: the GGUF's own or the Hugging Face directory's tokenizer.json).")
    var tokenizer: String?

    @Option(
        help:
            "Weights of decoding's matrix-vector products: fp32, int8 (Q8_0-style blocks) or bf16 (CPUs with AVX512_BF16); a mixture of experts keeps its router and experts in fp32."
    )
    var weights: String = "fp32"

    @Option(
        help:
            "Key/value cache storage: fp32, bf16 (half the bytes per position, values rounded) or auto (bf16 on CPUs with AVX512_BF16, fp32 elsewhere)."
    )
    var kvCache: String = "auto"

    @Option(help: "Threads for BLAS and Kumo's kernels.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Positions of key/value cache per sequence (at most max_position_embeddings).")
    var context: Int = 2048

    /// Loads the model and builds an engine with `slots` cache slots.
    func load(slots: Int) throws -> (ServedModel, Generator) {
        guard let format = WeightFormat(rawValue: weights) else {
            throw ValidationFailure("--weights \(weights): expected fp32, int8 or bf16")
        }
        guard format.isSupported else {
            throw ValidationFailure(
                "--weights \(weights) needs a CPU with AVX512_BF16 (vdpbf16ps), which this one lacks: use fp32 or int8")
        }
        let cacheFormat = try kvCacheFormat()
        guard threads >= 1 else { throw ValidationFailure("--threads must be at least 1") }
        Threads.set(threads)
        for warning in ignoredModelSettings(path: model) { printErr("warning: \(warning)") }
        let served = try ServedModel.load(path: model, tokenizerPath: tokenizer)
        do {
            return (served, try served.generator(slots: slots, context: context, format: format, kvCache: cacheFormat))
        } catch let error as EngineSizeError {
            throw ValidationFailure("--context \(context), --slots \(slots): \(error.description)")
        }
    }

    /// The cache storage `--kv-cache` names.
    func kvCacheFormat() throws -> KVCacheFormat {
        if kvCache == "auto" { return .preferred }
        guard let format = KVCacheFormat(rawValue: kvCache) else {
            throw ValidationFailure("--kv-cache \(kvCache): expected auto, fp32 or bf16")
        }
        return format
    }
}

/// Options that say how tokens are sampled.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Softmax temperature; 0 is greedy.")
    var temperature: Double = 0

    @Option(help: "Keep only the k most likely tokens (0: off).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling: keep the most likely tokens up to probability p (1: off).")
    var topP: Double = 1

    @Option(help: "Repetition penalty (1: off).")
    var repetitionPenalty: Double = 1

    @Option(help: "Seed of the sampling stream.")
    var seed: UInt64 = 0

    /// The parameters, validated.
    func parameters() throws -> SamplingParameters {
        guard temperature >= 0, topK >= 0, topP > 0 && topP <= 1, repetitionPenalty > 0 else {
            throw ValidationFailure("need --temperature ≥ 0, --top-k ≥ 0, 0 < --top-p ≤ 1, --repetition-penalty > 0")
        }
        return SamplingParameters(
            temperature: temperature, topK: topK, topP: topP, repetitionPenalty: repetitionPenalty, seed: seed)
    }
}

/// `kumo generate`: continues a prompt (or answers it as a chat turn), streaming the text.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt, streaming it to the terminal; tokens/s go to stderr.")

    @OptionGroup var serving: ServingOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "The prompt text.")
    var prompt: String

    @Flag(help: "Treat the prompt as a user turn and render it with the model's chat template.")
    var chat = false

    @Option(help: "Chat template when the model names none (or to override it): chatml or llm-jp.")
    var template: String?

    @Option(help: "Stop before this string (repeatable).")
    var stop: [String] = []

    @Option(help: "Upper bound on generated tokens.")
    var maxNewTokens: Int = 128

    func run() throws {
        guard maxNewTokens >= 1 else { throw ValidationFailure("--max-new-tokens must be at least 1") }
        let (served, generator) = try serving.load(slots: 1)
        var text = prompt
        var stops = stop
        if chat {
            let chosen: ChatTemplate?
            switch template {
            case nil: chosen = served.chatTemplate
            case "chatml": chosen = .chatML(defaultSystem: nil)
            case "llm-jp": chosen = .llmJP
            default: throw ValidationFailure("--template \(template!): expected chatml or llm-jp")
            }
            guard let chosen else {
                throw ValidationFailure("\(serving.model) names no chat template Kumo knows: pass --template")
            }
            text = chosen.render([ChatMessage(role: "user", content: prompt)])
            stops += chosen.stopStrings
        }
        let ids: [Int32]
        do {
            ids = try served.encode(text)
        } catch {
            throw ValidationFailure("--prompt: \(error.message)")
        }
        guard !ids.isEmpty else {
            throw ValidationFailure("--prompt is empty (it encodes to no tokens): give the text to continue")
        }
        guard ids.count < generator.engine.cache.capacity else {
            throw ValidationFailure(
                "the prompt has \(ids.count) tokens; --context is \(generator.engine.cache.capacity)")
        }
        let request = GenerationRequest(
            prompt: ids, maxNewTokens: maxNewTokens, sampling: try sampling.parameters(), stopStrings: stops,
            stopTokens: served.stopTokens)
        let result = generator.generate([request]) { _, piece in
            FileHandle.standardOutput.write(Data(piece.utf8))
        }[0]
        FileHandle.standardOutput.write(Data("\n".utf8))
        let decoded = max(result.tokens.count - 1, 0)
        printErr(
            String(
                format:
                    "prompt: %d tokens in %.3f s (%.1f tokens/s); generated %d tokens, %.1f tokens/s decode (%@ weights, %@ KV cache)",
                ids.count, result.prefillSeconds, Double(ids.count) / max(result.prefillSeconds, 1e-9),
                result.tokens.count, Double(decoded) / max(result.decodeSeconds, 1e-9), serving.weights,
                try serving.kvCacheFormat().rawValue))
    }
}
