import KumoCore
import KumoModel

/// Working buffers of the inference engine, grown to the largest call seen: the residual stream in
/// and out of a block, the final norm and the logits beside the blocks' own buffers.
final class Scratch {
    /// Rows of logits computed at once (prefill with every row's logits goes in chunks of this).
    static let logitRows = 64

    private(set) var rows = 0
    private(set) var x = FloatBuffer(count: 0), y = FloatBuffer(count: 0)
    private(set) var n = FloatBuffer(count: 0), rstd = FloatBuffer(count: 0), logits = FloatBuffer(count: 0)
    /// The blocks' activations and attention scores.
    let blocks: GenerationBuffers

    /// Buffers for `config` over a cache of `capacity` positions per slot.
    init(config: ModelConfig, capacity: Int) {
        blocks = GenerationBuffers(config: config, capacity: capacity)
    }

    /// Floats per row the engine's own buffers hold.
    static func floatsPerRow(_ c: ModelConfig) -> Int { 3 * c.hiddenSize + 1 + c.vocabSize }

    /// Makes room for `rows` token rows; returns self.
    func ensure(_ c: ModelConfig, rows needed: Int) -> Scratch {
        if needed > rows {
            rows = needed
            let r = max(needed, Self.logitRows)
            x = FloatBuffer(count: r * c.hiddenSize)
            y = FloatBuffer(count: r * c.hiddenSize)
            n = FloatBuffer(count: r * c.hiddenSize)
            rstd = FloatBuffer(count: r)
            logits = FloatBuffer(count: r * c.vocabSize)
        }
        return self
    }
}
