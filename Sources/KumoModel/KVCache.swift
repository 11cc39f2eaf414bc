import KumoCore

/// Keys and values of every layer for a fixed number of sequence slots, `capacity` positions each.
/// Only the key/value heads are stored (grouped-query attention shares them among query heads):
/// a slot's layer holds K and V as [capacity, kvHeads·headDim] rows, keys already rotated by RoPE.
public final class KVCache: @unchecked Sendable {
    /// Number of sequences the cache holds at once.
    public let slots: Int
    /// Positions per sequence.
    public let capacity: Int
    /// Floats per cached row: kvHeads · headDim.
    public let kvWidth: Int
    let layers: Int
    private let storage: FloatBuffer

    /// Allocates the cache for `config`'s layers and key/value heads.
    public init(config: ModelConfig, slots: Int, capacity: Int) {
        precondition(slots >= 1 && capacity >= 1)
        self.slots = slots
        self.capacity = capacity
        layers = config.numHiddenLayers
        kvWidth = config.numKeyValueHeads * config.headDim
        storage = FloatBuffer(count: slots * layers * 2 * capacity * kvWidth)
    }

    /// Bytes the cache occupies.
    public var bytes: Int { storage.count * 4 }

    /// Copies positions 0..<count of every layer from slot `source` to slot `target`, so that several
    /// continuations of one prompt can each extend their own copy of the prompt's cache.
    public func copyPrefix(from source: Int, to target: Int, count: Int) {
        precondition(count <= capacity && source < slots && target < slots)
        for layer in 0..<layers {
            keys(slot: target, layer: layer).update(from: keys(slot: source, layer: layer), count: count * kvWidth)
            values(slot: target, layer: layer).update(from: values(slot: source, layer: layer), count: count * kvWidth)
        }
    }

    /// Keys of `slot` in `layer`: [capacity, kvWidth].
    func keys(slot: Int, layer: Int) -> UnsafeMutablePointer<Float> {
        storage.pointer + ((slot * layers + layer) * 2) * capacity * kvWidth
    }

    /// Values of `slot` in `layer`: [capacity, kvWidth].
    func values(slot: Int, layer: Int) -> UnsafeMutablePointer<Float> {
        keys(slot: slot, layer: layer) + capacity * kvWidth
    }
}
