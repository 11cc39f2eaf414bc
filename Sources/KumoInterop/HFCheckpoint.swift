import Foundation
import KumoModel

/// A Hugging Face LLaMA directory: `config.json`, `model.safetensors` (or shards listed in
/// `model.safetensors.index.json`) and, for sentencepiece tokenizers, `tokenizer.model`.
/// Kumo's parameter names are Hugging Face's and its RoPE pairs the two halves of each head
/// as `rotate_half` does, so tensors map one to one with no permutation.
public enum HFCheckpoint {
    /// Writes `model` to `directory` (created if needed) in float32; copies `tokenizer` (a
    /// sentencepiece `.model`) as `tokenizer.model` when given.
    public static func export(_ model: LlamaModel, to directory: String, tokenizer: String? = nil) throws {
        let configJSON = try HFConfig.json(model.config)
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try configJSON.write(to: URL(fileURLWithPath: directory + "/config.json"))
        try KumoWeights.writeTensors(of: model, metadata: ["format": "pt"], to: directory + "/model.safetensors")
        if let tokenizer {
            let target = directory + "/tokenizer.model"
            if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
            do {
                try fm.copyItem(atPath: tokenizer, toPath: target)
            } catch {
                throw InteropError(tokenizer, "cannot be copied to \(target): \(error.localizedDescription)")
            }
            let tokenizerConfig = #"{"tokenizer_class": "LlamaTokenizer", "add_bos_token": false}"#
            try Data(tokenizerConfig.utf8).write(to: URL(fileURLWithPath: directory + "/tokenizer_config.json"))
        }
    }

    /// Whether `directory` looks like a Hugging Face model directory.
    public static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.fileExists(atPath: path + "/config.json")
    }

    /// Loads the model in `directory`; its safetensors may be F32, F16 or BF16.
    public static func load(from directory: String) throws -> LlamaModel {
        let config = try HFConfig.read(path: directory + "/config.json")
        let files = try weightFiles(directory)
        var byName: [String: SafeTensorsFile] = [:]
        for file in files {
            let f = try SafeTensorsFile(path: file)
            for name in f.entries.keys { byName[name] = f }
        }
        let layout = ParameterLayout(config)
        var expected = Set(layout.tensors.map(\.name))
        if config.tieWordEmbeddings { expected.insert("lm_head.weight") }  // tolerated: some writers keep a copy
        let unknown = byName.keys.filter { !expected.contains($0) && !$0.hasSuffix("rotary_emb.inv_freq") }
        guard unknown.isEmpty else {
            throw InteropError(
                directory, "tensors \(unknown.sorted().prefix(5)) are not part of a LLaMA model with this config.json")
        }
        for t in layout.tensors {
            guard let f = byName[t.name], let e = f.entries[t.name] else {
                throw InteropError(
                    directory, "no tensor \(t.name) in \(files.map { ($0 as NSString).lastPathComponent })")
            }
            guard e.shape == t.shape else {
                throw InteropError(f.path, "tensor \(t.name) has shape \(e.shape); config.json implies \(t.shape)")
            }
        }
        let model = try LlamaModel(config: config)
        for t in layout.tensors {
            let values = try byName[t.name]!.floats(t.name)
            (model.params.pointer + t.offset).update(from: values, count: t.count)
        }
        return model
    }

    /// The safetensors files of `directory`: the shards of the index, or `model.safetensors`.
    private static func weightFiles(_ directory: String) throws -> [String] {
        let index = directory + "/model.safetensors.index.json"
        guard let data = FileManager.default.contents(atPath: index) else { return [directory + "/model.safetensors"] }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let map = json["weight_map"] as? [String: String]
        else { throw InteropError(index, "has no weight_map object of tensor name → file") }
        let shards = Set(map.values)
        for shard in shards where shard.contains("/") || shard.hasPrefix(".") {
            throw InteropError(index, "shard name \(shard) must be a file in the same directory")
        }
        return shards.sorted().map { directory + "/" + $0 }
    }
}
