import Foundation
import KumoCore
import KumoModel

/// An inference engine that cannot be built as asked (no positions, no slots, or more memory than the
/// machine has); the message gives the numbers and what to lower.
public struct EngineSizeError: Error, CustomStringConvertible {
    public var description: String
}

extension InferenceEngine {
    /// Bytes an engine of `slots` slots of `capacity` positions allocates beside the model (its fp32
    /// parameters and RoPE table): the key/value caches (fp32 or bf16), int8 (bf16) copies of the
    /// matrices decoding multiplies with, and the working buffers of a decode step over every slot and
    /// of a prefill of `capacity` tokens. A Double, so that absurd sizes compare instead of overflowing.
    public static func bytesNeeded(
        config c: ModelConfig, slots: Int, capacity: Int, format: WeightFormat, kvCache: KVCacheFormat = .fp32
    ) -> Double {
        let (s, t) = (Double(slots), Double(capacity))
        let rows = max(s, t, Double(Scratch.logitRows))
        let perRow =
            Double(Scratch.floatsPerRow(c)) + Double(GenerationBuffers.floatsPerRow(c, capacity: capacity))
        let probs = Double(c.numAttentionHeads) * t * t
        let copyBytesPerWeight: [WeightFormat: Double] = [.fp32: 0, .int8: 1.125, .bf16: 2]
        let quantized = copiedWeights(c) * copyBytesPerWeight[format]! / 4
        return cacheBytes(config: c, slots: slots, capacity: capacity, kvCache: kvCache)
            + 4 * (rows * perRow + probs + quantized)
    }

    /// Weights of the matrices an int8 or bf16 engine copies: each block's projected matrices and the head.
    static func copiedWeights(_ c: ModelConfig) -> Double {
        let block = DecodeBlock.projected(c).reduce(0.0) {
            let shape = $1.shape(c)
            return $0 + Double(shape.rows) * Double(shape.columns)
        }
        return Double(c.numHiddenLayers) * block + Double(c.vocabSize) * Double(c.hiddenSize)
    }

    /// Bytes of the key/value caches of `slots` slots of `capacity` positions.
    public static func cacheBytes(
        config c: ModelConfig, slots: Int, capacity: Int, kvCache: KVCacheFormat = .fp32
    ) -> Double {
        Double(kvCache.bytes) * Double(slots) * Double(c.numHiddenLayers) * 2 * Double(capacity)
            * Double(c.numKeyValueHeads * c.headDim)
    }

    /// An engine for `model` with `slots` slots of `capacity` positions, after checking that both are
    /// at least 1, that `capacity` is within max_position_embeddings, and that the engine fits in
    /// `available` bytes (by default 90% of physical memory, less the model's parameters).
    public static func checked(
        model: LlamaModel, slots: Int, capacity: Int, format: WeightFormat = .fp32, kvCache: KVCacheFormat = .fp32,
        available: Int = SystemInfo.physicalMemoryBytes * 9 / 10
    ) throws -> InferenceEngine {
        let c = model.config
        guard slots >= 1 else { throw EngineSizeError(description: "slots is \(slots): need at least 1") }
        guard (1...c.maxPositionEmbeddings).contains(capacity) else {
            throw EngineSizeError(
                description:
                    "a context of \(capacity) positions: need 1...\(c.maxPositionEmbeddings) (the model's "
                    + "max_position_embeddings)")
        }
        let params = Double(4 * model.params.count)
        let needed = bytesNeeded(config: c, slots: slots, capacity: capacity, format: format, kvCache: kvCache)
        guard params + needed <= Double(available) else {
            throw EngineSizeError(
                description:
                    "\(slots) slots of \(capacity) positions need about \(gib(needed)) (key/value caches "
                    + "\(gib(cacheBytes(config: c, slots: slots, capacity: capacity, kvCache: kvCache))) "
                    + "and working buffers) beside the model's \(gib(params)), but the machine has \(gib(Double(available))) "
                    + "usable: lower the slots or the context")
        }
        return InferenceEngine(model: model, slots: slots, capacity: capacity, format: format, kvCache: kvCache)
    }
}

/// Formats bytes in GiB with two decimals.
private func gib(_ bytes: Double) -> String { String(format: "%.2f GiB", bytes / Double(1 << 30)) }
