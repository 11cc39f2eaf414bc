import Foundation
import KumoModel

/// Where a model comes from: a Hugging Face directory, a GGUF file or a Kumo weights file.
public enum ModelFormat: String, CaseIterable, Sendable {
    case hf, gguf, kumo

    /// The format of the model at `path`, from its content (a directory with config.json, the
    /// GGUF magic, or a safetensors file with Kumo metadata).
    public static func detect(_ path: String) throws -> ModelFormat {
        if HFCheckpoint.isDirectory(path) { return .hf }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw InteropError(path, "does not exist or cannot be read")
        }
        defer { try? handle.close() }
        if handle.readData(ofLength: 4) == Data("GGUF".utf8) { return .gguf }
        if KumoWeights.isKumoFile(path) { return .kumo }
        throw InteropError(
            path,
            "is neither a Hugging Face directory (with config.json), a GGUF file nor a Kumo weights file")
    }
}

/// Loads the model at `path` in whichever format it is, as `kumo ... --model PATH` does.
public func loadModel(path: String) throws -> LlamaModel {
    switch try ModelFormat.detect(path) {
    case .hf: return try HFCheckpoint.load(from: path)
    case .gguf: return try GGUFLlama.load(try GGUFFile(path: path))
    case .kumo: return try KumoWeights.load(from: path)
    }
}
