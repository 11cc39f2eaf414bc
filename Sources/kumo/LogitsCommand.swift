import ArgumentParser
import Foundation
import KumoInterop
import KumoModel

/// `kumo logits`: the model's logits for given token sequences, for comparisons with other runtimes.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Run a model on token sequences and write its logits as safetensors.",
        discussion: """
            --tokens is a JSON file holding a list of equal-length lists of token ids. The output holds one \
            F32 tensor, "logits", of shape [sequences, length, vocab]. The model is any --model: a Hugging Face \
            directory, a GGUF file or a Kumo weights file.
            """)

    @OptionGroup var model: ModelOption

    @Option(help: "JSON file: a list of equal-length lists of token ids.")
    var tokens: String

    @Option(help: "Output safetensors file.")
    var out: String

    func run() throws {
        let m = try model.load()
        guard let data = FileManager.default.contents(atPath: tokens),
            let sequences = try? JSONDecoder().decode([[Int32]].self, from: data), let first = sequences.first,
            !first.isEmpty, sequences.allSatisfy({ $0.count == first.count })
        else { throw ValidationFailure("--tokens \(tokens): expected a JSON list of equal-length lists of token ids") }
        let vocab = m.config.vocabSize
        if let bad = sequences.joined().first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw ValidationFailure("--tokens \(tokens): id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        guard first.count <= m.config.maxPositionEmbeddings else {
            throw ValidationFailure(
                "--tokens \(tokens): sequences of \(first.count) exceed max_position_embeddings "
                    + "\(m.config.maxPositionEmbeddings)")
        }
        let flat = Array(sequences.joined())
        let logits = flat.withUnsafeBufferPointer {
            m.forward(tokens: $0.baseAddress!, batch: sequences.count, seqLen: first.count)
        }
        let values = UnsafeBufferPointer(start: logits, count: flat.count * vocab)
        try SafeTensorsWriter.write(
            [.init(name: "logits", shape: [sequences.count, first.count, vocab], values: values)], to: out)
    }
}
