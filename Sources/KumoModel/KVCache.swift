import KumoCore

/// Keys and values of every layer for a fixed number of sequence slots, `capacity` positions each.
/// Only the key/value heads are stored (grouped-query attention shares them among query heads):
/// a slot's layer holds K and V as [capacity, kvHeads·headDim] rows, keys already rotated by RoPE,
/// in fp32 or bf16 (`format`).
public final class KVCache: @unchecked Sendable {
    /// Number of sequences the cache holds at once.
    public let slots: Int
    /// Positions per sequence.
    public let capacity: Int
    /// Elements per cached row: kvHeads · headDim.
    public let kvWidth: Int
    /// How keys and values are stored.
    public let format: KVCacheFormat
    let layers: Int
    private let fp32: FloatBuffer?
    private let bf16: BF16Buffer?

    /// Allocates the cache for `config`'s layers and key/value heads.
    public init(config: ModelConfig, slots: Int, capacity: Int, format: KVCacheFormat = .fp32) {
        precondition(slots >= 1 && capacity >= 1)
        self.slots = slots
        self.capacity = capacity
        self.format = format
        layers = config.numHiddenLayers
        kvWidth = config.numKeyValueHeads * config.headDim
        let count = slots * layers * 2 * capacity * kvWidth
        (fp32, bf16) = format == .fp32 ? (FloatBuffer(count: count), nil) : (nil, BF16Buffer(count: count))
    }

    /// Bytes the cache occupies.
    public var bytes: Int { slots * layers * 2 * capacity * kvWidth * format.bytes }

    /// Copies positions 0..<count of every layer from slot `source` to slot `target`, so that several
    /// continuations of one prompt can each extend their own copy of the prompt's cache.
    public func copyPrefix(from source: Int, to target: Int, count: Int) {
        precondition(count <= capacity && source < slots && target < slots)
        for layer in 0..<layers {
            keys(slot: target, layer: layer).copy(from: keys(slot: source, layer: layer), count: count * kvWidth)
            values(slot: target, layer: layer).copy(from: values(slot: source, layer: layer), count: count * kvWidth)
        }
    }

    /// Keys of `slot` in `layer`: [capacity, kvWidth].
    func keys(slot: Int, layer: Int) -> KVRows {
        let start = ((slot * layers + layer) * 2) * capacity * kvWidth
        if let fp32 { return .fp32(fp32.pointer + start) }
        return .bf16(bf16!.pointer + start)
    }

    /// Values of `slot` in `layer`: [capacity, kvWidth].
    func values(slot: Int, layer: Int) -> KVRows {
        keys(slot: slot, layer: layer).advanced(by: capacity * kvWidth)
    }
}
