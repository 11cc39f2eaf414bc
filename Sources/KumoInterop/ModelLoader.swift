import Foundation
import KumoModel

/// Where a model comes from: a Hugging Face directory, a GGUF file or a Kumo weights file.
public enum ModelFormat: String, CaseIterable, Sendable {
    case hf, gguf, kumo

    /// The format of the model at `path`, from its content (a directory with config.json, the
    /// GGUF magic, or a safetensors file with Kumo metadata).
    public static func detect(_ path: String) throws -> ModelFormat {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InteropError(path, "does not exist")
        }
        if isDirectory.boolValue {
            if HFCheckpoint.isDirectory(path) { return .hf }
            throw InteropError(path, directoryWithoutConfig(path))
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw InteropError(path, "cannot be read") }
        let start = (try? handle.read(upToCount: 9)) ?? Data()
        try? handle.close()
        if start.prefix(4) == Data("GGUF".utf8) { return .gguf }
        guard SafeTensorsFile.looksLikeSafeTensors(start) else {
            throw InteropError(
                path, "is neither a Hugging Face directory (with config.json), a GGUF file nor a safetensors file")
        }
        // A safetensors file: its own error (truncated, malformed) says more than "not a model".
        guard try SafeTensorsFile(path: path).metadata[KumoWeights.configKey] != nil else {
            throw InteropError(
                path,
                "is a safetensors file without Kumo's \(KumoWeights.configKey) metadata: pass the Hugging Face "
                    + "directory holding it (with its config.json), or a Kumo weights file")
        }
        return .kumo
    }

    /// Why a directory without config.json is no model, listing what it holds.
    private static func directoryWithoutConfig(_ path: String) -> String {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        let shown = entries.prefix(8).joined(separator: ", ") + (entries.count > 8 ? ", …" : "")
        let holds = entries.isEmpty ? "is an empty directory" : "is a directory holding \(shown)"
        let weights = (path as NSString).appendingPathComponent("model.safetensors")
        let hint =
            FileManager.default.fileExists(atPath: weights)
            ? "; for a Kumo run directory pass its weights file: --model \(weights)"
            : "; pass a Hugging Face directory, a GGUF file or a Kumo weights file (a run's model.safetensors)"
        return "\(holds) but no config.json, so it is not a Hugging Face model\(hint)"
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

/// The configuration of the model at `path` in whichever format it is, read without its weights.
public func loadModelConfig(path: String) throws -> ModelConfig {
    switch try ModelFormat.detect(path) {
    case .hf: return try HFConfig.read(path: path + "/config.json")
    case .gguf: return try GGUFLlama.config(try GGUFFile(path: path))
    case .kumo: return try KumoWeights.config(of: try SafeTensorsFile(path: path))
    }
}

/// Settings of the model at `path` that Kumo reads but does not apply, each with why: what a
/// command prints as warnings before running it.
public func ignoredModelSettings(path: String) -> [String] {
    guard (try? ModelFormat.detect(path)) == .hf,
        let data = FileManager.default.contents(atPath: path + "/config.json")
    else { return [] }
    return HFConfig.ignoredSettings(data).map { "\(path)/config.json: \($0)" }
}
