import Foundation
import KumoModel

/// Kumo's own weights file: one safetensors file of F32 tensors with Kumo's (Hugging Face)
/// names, and the full `ModelConfig`, including `parallel_layers`, as JSON in the metadata
/// under `kumo.config`; `kumo.tokenizer` names the tokenizer it was trained with, if recorded.
public enum KumoWeights {
    static let configKey = "kumo.config"
    static let tokenizerKey = "kumo.tokenizer"
    static let chatTemplateKey = "kumo.chat_template"

    /// Writes every parameter of `model` to `path` as F32 safetensors.
    static func writeTensors(of model: LlamaModel, metadata: [String: String], to path: String) throws {
        let tensors = model.layout.tensors.map {
            SafeTensorsWriter.Tensor(
                name: $0.name, shape: $0.shape,
                values: UnsafeBufferPointer(start: model.params.pointer + $0.offset, count: $0.count))
        }
        try SafeTensorsWriter.write(tensors, metadata: metadata, to: path)
    }

    /// Writes `model` with its configuration to `path`, recording `tokenizer` (what
    /// `loadTokenizer(model:)` takes: `byte` or a path, stored absolute) and the name of the prompt
    /// template it was tuned with (`data.chat_template`) when given.
    public static func save(
        _ model: LlamaModel, to path: String, tokenizer: String? = nil, chatTemplate: String? = nil
    ) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // the same model gives the same bytes
        let config = String(decoding: try encoder.encode(model.config), as: UTF8.self)
        var metadata = ["format": "kumo", configKey: config]
        if let tokenizer {
            metadata[tokenizerKey] =
                tokenizer == "byte" ? tokenizer : URL(fileURLWithPath: tokenizer).standardizedFileURL.path
        }
        metadata[chatTemplateKey] = chatTemplate
        try writeTensors(of: model, metadata: metadata, to: path)
    }

    /// The name of the prompt template recorded in the Kumo weights file at `path`, if any.
    public static func chatTemplate(of path: String) throws -> String? {
        try SafeTensorsFile(path: path).metadata[chatTemplateKey]
    }

    /// The tokenizer recorded in the Kumo weights file at `path`, if any.
    public static func tokenizer(of path: String) throws -> String? {
        try SafeTensorsFile(path: path).metadata[tokenizerKey]
    }

    /// The configuration recorded in the Kumo weights file `f`, checked.
    static func config(of f: SafeTensorsFile) throws -> ModelConfig {
        guard let text = f.metadata[configKey] else {
            throw InteropError(f.path, "has no \(configKey) metadata; it is not a Kumo weights file")
        }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(text.utf8))
        } catch {
            throw InteropError(f.path, "\(configKey) is not a valid model configuration: \(error)")
        }
        try HFConfig.validate(config, path: f.path)
        return config
    }

    /// Loads a model written by `save`.
    public static func load(from path: String) throws -> LlamaModel {
        let f = try SafeTensorsFile(path: path)
        let config = try config(of: f)
        let layout = ParameterLayout(config)
        for t in layout.tensors {
            guard let e = f.entries[t.name], e.shape == t.shape else {
                throw InteropError(path, "tensor \(t.name) is missing or not of shape \(t.shape)")
            }
        }
        let model = try LlamaModel(inferenceOf: config)
        for t in layout.tensors {
            (model.params.pointer + t.offset).update(from: try f.floats(t.name), count: t.count)
        }
        return model
    }
}
