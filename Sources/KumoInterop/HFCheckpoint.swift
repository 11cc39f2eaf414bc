import Foundation
import KumoModel

/// A Hugging Face LLaMA or Mixtral directory: `config.json`, `model.safetensors` (or shards listed in
/// `model.safetensors.index.json`) and, for sentencepiece tokenizers, `tokenizer.model`.
/// Kumo's parameter names are Hugging Face's and its RoPE pairs the two halves of each head
/// as `rotate_half` does, so tensors map one to one with no permutation.
public enum HFCheckpoint {
    /// Writes `model` to `directory` (created if needed) in float32, a mixture of experts as
    /// MixtralForCausalLM with `save_pretrained`'s per-expert names; copies `tokenizer` (a
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

    /// Loads the model in `directory`; its safetensors may be F32, F16 or BF16. A Mixtral's experts
    /// may carry `save_pretrained`'s per-expert names or transformers 5's fused ones (`MixtralTensors`).
    public static func load(from directory: String) throws -> LlamaModel {
        let config = try HFConfig.read(path: directory + "/config.json")
        let layout = ParameterLayout(config)
        let sources = try locate(layout, in: directory)
        let model = try LlamaModel(inferenceOf: config)
        for (t, source) in zip(layout.tensors, sources) {
            let values = try source.file.floats(source.slice.tensor, elements: source.slice.elements)
            (model.params.pointer + t.offset).update(from: values, count: t.count)
        }
        return model
    }

    /// The file and element range holding each tensor of `layout`, in its order, after checking that
    /// every tensor is there with its shape and that the files hold nothing else.
    private static func locate(_ layout: ParameterLayout, in directory: String) throws -> [(
        file: SafeTensorsFile, slice: MixtralTensors.Slice
    )] {
        let files = try weightFiles(directory)
        var byName: [String: SafeTensorsFile] = [:]
        for file in files {
            let f = try SafeTensorsFile(path: file)
            for name in f.entries.keys { byName[name] = f }
        }
        let fused = MixtralTensors.fusedSlices(layout.config)
        var expected = Set(layout.tensors.map(\.name)).union(fused.values.map(\.tensor))
        if layout.config.tieWordEmbeddings { expected.insert("lm_head.weight") }  // tolerated: some writers keep a copy
        let unknown = byName.keys.filter { !expected.contains($0) && !$0.hasSuffix("rotary_emb.inv_freq") }
        guard unknown.isEmpty else {
            let model = layout.config.isMoE ? "Mixtral" : "LLaMA"
            throw InteropError(
                directory,
                "tensors \(unknown.sorted().prefix(5)) are not part of a \(model) model with this config.json")
        }
        if let both = fused.first(where: { byName[$0.key] != nil && byName[$0.value.tensor] != nil }) {
            throw InteropError(
                directory, "holds both \(both.key) and \(both.value.tensor), two copies of the same weights: keep one")
        }
        return try layout.tensors.map { t in
            let whole = MixtralTensors.Slice(tensor: t.name, shape: t.shape, elements: 0..<t.count)
            let slice = byName[t.name] == nil ? fused[t.name] ?? whole : whole
            guard let f = byName[slice.tensor], let e = f.entries[slice.tensor] else {
                throw InteropError(
                    directory, "no tensor \(t.name) in \(files.map { ($0 as NSString).lastPathComponent })")
            }
            guard e.shape == slice.shape else {
                throw InteropError(
                    f.path, "tensor \(slice.tensor) has shape \(e.shape); config.json implies \(slice.shape)")
            }
            return (f, slice)
        }
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
