import Foundation
import KumoModel

/// Writes a Kumo model as a GGUF version 3 file of the `llama` architecture with F32 tensors,
/// in llama.cpp's layout: Q and K rows reordered to adjacent rotary pairs (the inverse of what
/// `GGUFLlama` undoes on load). The file carries no tokenizer.
public enum GGUFWriter {
    static let alignment = 32

    /// Writes `model` to `path` (through a temporary file renamed into place).
    public static func write(_ model: LlamaModel, to path: String) throws {
        let c = model.config
        guard !c.parallelLayers else {
            throw InteropError(
                path, "parallel_layers = true cannot be expressed in the llama architecture; use --format kumo")
        }
        guard !c.isMoE else {
            throw InteropError(
                path, "a mixture of experts is not written as GGUF by Kumo; use --format hf (Mixtral) or kumo")
        }
        var header = Data("GGUF".utf8)
        header.append(le(UInt32(3)))
        let tensors = model.layout.tensors
        header.append(le(UInt64(tensors.count)))
        let metadata: [(String, Data)] = [
            ("general.architecture", string("llama")), ("general.name", string("kumo")),
            ("general.file_type", u32(0)), ("llama.vocab_size", u32(c.vocabSize)),
            ("llama.context_length", u32(c.maxPositionEmbeddings)), ("llama.embedding_length", u32(c.hiddenSize)),
            ("llama.block_count", u32(c.numHiddenLayers)), ("llama.feed_forward_length", u32(c.intermediateSize)),
            ("llama.attention.head_count", u32(c.numAttentionHeads)),
            ("llama.attention.head_count_kv", u32(c.numKeyValueHeads)),
            ("llama.rope.dimension_count", u32(c.headDim)), ("llama.rope.freq_base", f32(c.ropeTheta)),
            ("llama.attention.layer_norm_rms_epsilon", f32(c.rmsNormEps)),
        ]
        header.append(le(UInt64(metadata.count)))
        for (key, value) in metadata {
            header.append(stringBytes(key))
            header.append(value)
        }
        var offset = 0
        for t in tensors {
            header.append(stringBytes(GGUFLlama.ggufName(t.name)))
            header.append(le(UInt32(t.shape.count)))
            for d in t.shape.reversed() { header.append(le(UInt64(d))) }
            header.append(le(GGMLType.f32.rawValue))
            header.append(le(UInt64(offset)))
            offset += padded(t.count * 4)
        }
        header.append(Data(count: padded(header.count) - header.count))
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary)
        else { throw InteropError(path, "cannot be written") }
        handle.write(header)
        for t in tensors {
            var values = Array(UnsafeBufferPointer(start: model.params.pointer + t.offset, count: t.count))
            if t.name.hasSuffix("q_proj.weight") || t.name.hasSuffix("k_proj.weight") {
                values = GGUFLlama.reorderRotaryRows(
                    values, rows: t.shape[0], columns: t.shape[1], headDim: c.headDim, toAdjacentPairs: true)
            }
            handle.write(values.withUnsafeBufferPointer { Data(buffer: $0) })
            handle.write(Data(count: padded(t.count * 4) - t.count * 4))
        }
        try handle.close()
        _ = try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }

    private static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
    private static func le<T: FixedWidthInteger>(_ v: T) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    private static func stringBytes(_ s: String) -> Data { le(UInt64(s.utf8.count)) + Data(s.utf8) }
    private static func string(_ s: String) -> Data { le(UInt32(8)) + stringBytes(s) }
    private static func u32(_ v: Int) -> Data { le(UInt32(4)) + le(UInt32(v)) }
    private static func f32(_ v: Double) -> Data { le(UInt32(6)) + le(Float(v).bitPattern) }
}
