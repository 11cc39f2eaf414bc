import KumoCore
import KumoModel

/// Working buffers of the inference engine, grown to the largest call seen.
final class Scratch {
    /// Rows of logits computed at once (prefill with every row's logits goes in chunks of this).
    static let logitRows = 64

    private(set) var rows = 0
    private(set) var prefillLength = 0
    private(set) var x = FloatBuffer(count: 0), n = FloatBuffer(count: 0), rstd = FloatBuffer(count: 0)
    private(set) var q = FloatBuffer(count: 0), k = FloatBuffer(count: 0), v = FloatBuffer(count: 0)
    private(set) var att = FloatBuffer(count: 0), gate = FloatBuffer(count: 0), up = FloatBuffer(count: 0)
    private(set) var act = FloatBuffer(count: 0), logits = FloatBuffer(count: 0)
    private(set) var scores = FloatBuffer(count: 0), lse = FloatBuffer(count: 0)

    /// Makes room for `rows` token rows and a prompt of `prefillLength` tokens; returns self.
    func ensure(_ c: ModelConfig, rows needed: Int, prefillLength t: Int, cache: KVCache) -> Scratch {
        if needed > rows {
            rows = needed
            let r = max(needed, Self.logitRows)
            let qw = c.numAttentionHeads * c.headDim
            x = FloatBuffer(count: r * c.hiddenSize)
            n = FloatBuffer(count: r * c.hiddenSize)
            rstd = FloatBuffer(count: r)
            q = FloatBuffer(count: r * qw)
            k = FloatBuffer(count: r * cache.kvWidth)
            v = FloatBuffer(count: r * cache.kvWidth)
            att = FloatBuffer(count: r * qw)
            gate = FloatBuffer(count: r * c.intermediateSize)
            up = FloatBuffer(count: r * c.intermediateSize)
            act = FloatBuffer(count: r * c.intermediateSize)
            logits = FloatBuffer(count: r * c.vocabSize)
            scores = FloatBuffer(count: r * c.numAttentionHeads * cache.capacity)
        }
        if t > prefillLength {
            prefillLength = t
            lse = FloatBuffer(count: c.numAttentionHeads * t)
        }
        return self
    }
}
