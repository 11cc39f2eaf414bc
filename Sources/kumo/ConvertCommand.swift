import ArgumentParser
import Foundation
import KumoData
import KumoInterop
import KumoModel

/// `kumo convert`: between Hugging Face directories, GGUF files and Kumo weights files.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract:
            "Convert a model between a Hugging Face LLaMA or Mixtral directory, a GGUF file and a Kumo weights file.",
        discussion: """
            The input format is detected: a directory with config.json (Hugging Face; model.safetensors or \
            sharded model.safetensors.index.json, F32/F16/BF16), a file starting with the GGUF magic (version 2 \
            or 3, llama architecture; F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors are dequantized to fp32), or a \
            Kumo weights file (safetensors with kumo.config metadata). The output format is --format, or else \
            guessed from --to: *.safetensors is kumo, *.gguf is gguf, anything else a Hugging Face directory. \
            GGUF output is version 3, llama architecture, F32 tensors, without a tokenizer. Hugging Face output is LlamaForCausalLM \
            in float32, or MixtralForCausalLM for a mixture of experts (per-expert tensor names, as save_pretrained \
            writes them; fused transformers-5 names are read too); models with parallel_layers cannot be expressed \
            that way and are refused. Mixtures of experts are not read from or written to GGUF.
            """)

    @Option(help: "The model to read: a Hugging Face directory, a GGUF file or a Kumo weights file.")
    var from: String

    @Option(help: "Where to write: a directory (hf) or a file (gguf, kumo).")
    var to: String

    @Option(help: "Output format: hf, gguf or kumo (default: from --to).")
    var format: String?

    @Option(help: "A sentencepiece .model to copy into a Hugging Face output (default: the input's tokenizer.model).")
    var tokenizer: String?

    func run() throws {
        let started = Date()
        let output = try outputFormat()
        let input = try ModelFormat.detect(from)
        printErr("reading \(from) (\(input.rawValue))")
        let model = try loadModelReportingErrors(path: from)
        let c = model.config
        printErr(
            "model: \(c.shapeSummary), \(model.layout.count) parameters"
                + (c.tieWordEmbeddings ? ", tied embeddings" : ""))
        printErr("writing \(to) (\(output.rawValue))")
        switch output {
        case .hf: try HFCheckpoint.export(model, to: to, tokenizer: tokenizerToCopy(input: input))
        case .kumo: try KumoWeights.save(model, to: to)
        case .gguf: try GGUFWriter.write(model, to: to)
        }
        printErr(String(format: "done in %.1f s", Date().timeIntervalSince(started)))
    }

    private func outputFormat() throws -> ModelFormat {
        guard let format else {
            if to.hasSuffix(".safetensors") { return .kumo }
            return to.hasSuffix(".gguf") ? .gguf : .hf
        }
        guard let f = ModelFormat(rawValue: format) else {
            throw ValidationFailure("--format \(format): expected hf, gguf or kumo")
        }
        return f
    }

    /// The tokenizer given, or the input directory's own sentencepiece model.
    private func tokenizerToCopy(input: ModelFormat) throws -> String? {
        if let tokenizer {
            guard FileManager.default.fileExists(atPath: tokenizer) else {
                throw ValidationFailure("--tokenizer \(tokenizer): no such file")
            }
            return tokenizer
        }
        let own = from + "/tokenizer.model"
        return input == .hf && FileManager.default.fileExists(atPath: own) ? own : nil
    }
}
