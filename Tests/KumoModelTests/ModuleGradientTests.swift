import KumoCore
import XCTest

@testable import KumoModel

/// Finite-difference checks of whole modules (attention, MLP, blocks) and of the model.
final class ModuleGradientTests: XCTestCase {
    private let gc = GradientCheck()

    override func setUp() { Threads.set(1) }

    private func config(kv: Int = 2, parallel: Bool = false, tied: Bool = false) -> ModelConfig {
        ModelConfig(
            vocabSize: 37, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
            numKeyValueHeads: kv, maxPositionEmbeddings: 16, tieWordEmbeddings: tied, parallelLayers: parallel)
    }

    /// One block's parameters drawn at random (norm weights around 1) in a flat buffer.
    private func blockParameters(_ c: ModelConfig, seed: UInt64) -> (FloatBuffer, BlockLayout) {
        let layout = ParameterLayout(c).block
        let p = randomBuffer(layout.count, seed: seed, scale: 0.2)
        for off in [layout.inputNorm] + (layout.postNorm.map { [$0] } ?? []) {
            for i in 0..<c.hiddenSize { p[off + i] = 1 + 0.5 * p[off + i] }
        }
        return (p, layout)
    }

    private func shape(_ c: ModelConfig, batch: Int, seq: Int) -> AttentionShape {
        AttentionShape(
            batch: batch, seqLen: seq, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
    }

    /// Name, offset and size of every tensor of a block.
    private func blockTensors(_ l: BlockLayout, _ c: ModelConfig) -> [(name: String, offset: Int, count: Int)] {
        let h = c.hiddenSize
        let qw = c.numAttentionHeads * c.headDim
        let kvw = c.numKeyValueHeads * c.headDim
        let f = c.intermediateSize
        var list = [
            ("input_layernorm", l.inputNorm, h), ("q_proj", l.q, qw * h), ("k_proj", l.k, kvw * h),
            ("v_proj", l.v, kvw * h), ("o_proj", l.o, h * qw), ("gate_proj", l.gate, f * h), ("up_proj", l.up, f * h),
            ("down_proj", l.down, h * f),
        ]
        if let post = l.postNorm { list.append(("post_attention_layernorm", post, h)) }
        return list
    }

    /// SelfAttention: L = Σ o_proj(attn(rope q, rope k, v)) ⊙ R against the input n and the
    /// q/k/v/o weights, for MHA, GQA and MQA.
    func testSelfAttentionInputAndProjectionGradientsMatchFiniteDifferences() {
        for kv in [4, 2, 1] {
            let c = config(kv: kv)
            let s = shape(c, batch: 2, seq: 7)
            let rows = s.batch * s.seqLen
            let (p, l) = blockParameters(c, seed: 20)
            let w = BlockWeights(base: p.pointer, layout: l)
            let rope = RoPETable(headDim: c.headDim, maxPositions: 16, theta: c.ropeTheta)
            let attention = SelfAttention(config: c, rope: rope)
            let acts = BlockActivations(c, shape: s)
            let n = randomBuffer(rows * c.hiddenSize, seed: 21)
            let r = randomBuffer(rows * c.hiddenSize, seed: 22)
            let y = FloatBuffer(count: rows * c.hiddenSize)
            let loss = { () -> Double in
                attention.forward(n.pointer, w, acts, s, y: y.pointer, accumulate: false)
                return dot(y.pointer, r.pointer, y.count)
            }
            _ = loss()
            let g = FloatBuffer(count: l.count)
            let dn = FloatBuffer(count: n.count)
            attention.backward(
                r.pointer, n.pointer, w, BlockWeights(base: g.pointer, layout: l), acts, BackwardScratch(c, shape: s),
                s, dn: dn.pointer, accumulate: false)
            let kind = "self-attention 4/\(kv)"
            gc.check(kind + " input", x: n.pointer, count: n.count, analytic: dn.array, loss: loss)
            for t in blockTensors(l, c) where ["q_proj", "k_proj", "v_proj", "o_proj"].contains(t.name) {
                gc.check(
                    kind + " " + t.name, x: p.pointer + t.offset, count: t.count,
                    analytic: values(g.pointer + t.offset, t.count), loss: loss)
            }
            // MLP and norm gradients are untouched.
            for t in blockTensors(l, c)
            where !t.name.hasSuffix("_proj") || t.name.hasPrefix("gate")
                || t.name.hasPrefix("up") || t.name.hasPrefix("down")
            {
                XCTAssertTrue(values(g.pointer + t.offset, t.count).allSatisfy { $0 == 0 }, kind + " " + t.name)
            }
        }
    }

    /// SwiGLUMLP: L = Σ down(silu(gate n) · up n) ⊙ R against n and the three weights.
    func testSwiGLUMLPInputAndWeightGradientsMatchFiniteDifferences() {
        let c = config()
        let rows = 8
        let (p, l) = blockParameters(c, seed: 23)
        let w = BlockWeights(base: p.pointer, layout: l)
        let s = shape(c, batch: 1, seq: rows)
        let mlp = SwiGLUMLP(config: c)
        let acts = BlockActivations(c, shape: s)
        let n = randomBuffer(rows * c.hiddenSize, seed: 24)
        let r = randomBuffer(rows * c.hiddenSize, seed: 25)
        let y = FloatBuffer(count: rows * c.hiddenSize)
        let loss = { () -> Double in
            mlp.forward(n.pointer, w, acts, rows: rows, y: y.pointer, accumulate: false)
            return dot(y.pointer, r.pointer, y.count)
        }
        _ = loss()
        let g = FloatBuffer(count: l.count)
        let dn = FloatBuffer(count: n.count)
        mlp.backward(
            r.pointer, n.pointer, w, BlockWeights(base: g.pointer, layout: l), acts, BackwardScratch(c, shape: s),
            rows: rows, dn: dn.pointer, accumulate: false)
        gc.check("mlp input", x: n.pointer, count: n.count, analytic: dn.array, loss: loss)
        for t in blockTensors(l, c) where ["gate_proj", "up_proj", "down_proj"].contains(t.name) {
            gc.check(
                "mlp " + t.name, x: p.pointer + t.offset, count: t.count,
                analytic: values(g.pointer + t.offset, t.count), loss: loss)
        }
    }

    /// A whole block, L = Σ block(x) ⊙ R, against x and every weight of the block.
    private func checkBlock(parallel: Bool) {
        let c = config(parallel: parallel)
        let s = shape(c, batch: 2, seq: 6)
        let rows = s.batch * s.seqLen
        let (p, l) = blockParameters(c, seed: 26)
        XCTAssertEqual(l.postNorm == nil, parallel)
        let w = BlockWeights(base: p.pointer, layout: l)
        let rope = RoPETable(headDim: c.headDim, maxPositions: 16, theta: c.ropeTheta)
        let block = TransformerBlock(config: c, rope: rope)
        let acts = BlockActivations(c, shape: s)
        let x = randomBuffer(rows * c.hiddenSize, seed: 27)
        let r = randomBuffer(rows * c.hiddenSize, seed: 28)
        let out = FloatBuffer(count: x.count)
        let scratch = BackwardScratch(c, shape: s)
        let loss = { () -> Double in
            block.forward(x.pointer, out: out.pointer, w, acts, scratch, s)
            return dot(out.pointer, r.pointer, out.count)
        }
        _ = loss()
        let g = FloatBuffer(count: l.count)
        let dx = FloatBuffer(r.array)
        block.backward(
            dx.pointer, x.pointer, w, BlockWeights(base: g.pointer, layout: l), acts, scratch, s)
        let kind = parallel ? "parallel block" : "sequential block"
        gc.check(kind + " input", x: x.pointer, count: x.count, analytic: dx.array, loss: loss)
        for t in blockTensors(l, c) {
            gc.check(
                kind + " " + t.name, x: p.pointer + t.offset, count: t.count,
                analytic: values(g.pointer + t.offset, t.count), loss: loss)
        }
    }

    func testSequentialTransformerBlockGradientsMatchFiniteDifferences() { checkBlock(parallel: false) }
    func testParallelLayersTransformerBlockGradientsMatchFiniteDifferences() { checkBlock(parallel: true) }

    /// The whole model through lossAndBackward (mean cross-entropy, one target ignored), on a
    /// sample of every tensor in the layout; gradients computed in `precision`, finite
    /// differences always of the fp32 loss (the true gradient, which bf16's approximates).
    private func checkModel(tied: Bool, kv: Int, precision: Precision = .fp32) throws {
        let c = config(kv: kv, tied: tied)
        let model = try LlamaModel(config: c)
        model.precision = precision
        model.initializeWeights(seed: 29, std: 0.2)
        // Norm weights away from 1 so that a mixed-up norm gradient shows.
        var rng = SeededRandom(seed: 31)
        for t in model.layout.tensors where t.shape.count == 1 {
            for i in 0..<t.count { model.params[t.offset + i] += Float(rng.normal() * 0.2) }
        }
        let (batch, seq) = (2, 7)
        rng = SeededRandom(seed: 30)
        let inputs = (0..<batch * seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        var targets = (0..<batch * seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        targets[4] = CrossEntropyKernel.ignoreIndex
        targets[9] = CrossEntropyKernel.ignoreIndex
        let scored = targets.filter { $0 != CrossEntropyKernel.ignoreIndex }.count
        let loss = { () -> Double in
            referenceCrossEntropy(
                model.forward(tokens: inputs, batch: batch, seqLen: seq), targets: targets, vocab: c.vocabSize)
        }
        let expectedLoss = loss()
        model.zeroGrads()
        let result = model.lossAndBackward(
            inputs: inputs, targets: targets, batch: batch, seqLen: seq, gradScale: 1 / Float(scored))
        XCTAssertEqual(result.count, scored)
        XCTAssertEqual(result.lossSum / Double(scored), expectedLoss, accuracy: 1e-5 * expectedLoss)
        let grads = model.grads.array
        model.precision = .fp32
        // bf16 gradients carry about 2⁻⁸ relative error per rounded operand, compounded over the
        // products a gradient passes through (measured: up to 3e-2 norm-wise, 0.15 of rms at one
        // coordinate); a wrong transpose or a missing term misses by O(1).
        let gc = precision == .bf16 ? GradientCheck(tolerance: 8e-2, coordinateTolerance: 0.3) : self.gc
        XCTAssertEqual(model.layout.tensor(named: "lm_head.weight") == nil, tied)
        XCTAssertEqual(model.layout.tensors.count, tied ? 20 : 21)
        // Embedding rows of a token that is an input and of one that is not (which, when tied,
        // still gets the output head's gradient).
        let present = Int(inputs[0])
        let absent = (0..<c.vocabSize).first { !inputs.contains(Int32($0)) }!
        let h = c.hiddenSize
        for t in model.layout.tensors {
            let extra =
                t.name.hasPrefix("model.embed_tokens") ? [present * h + 1, absent * h + 2, absent * h + h - 1] : []
            gc.check(
                (tied ? "tied " : "untied ") + t.name, x: model.params.pointer + t.offset, count: t.count,
                analytic: Array(grads[t.offset..<t.offset + t.count]), extra: extra, loss: loss)
        }
        let absentRow = Array(grads[absent * h..<(absent + 1) * h])
        XCTAssertEqual(absentRow.allSatisfy { $0 == 0 }, !tied, "embedding row of a token absent from the inputs")
    }

    func testUntiedLlamaModelGradientsMatchFiniteDifferences() throws { try checkModel(tied: false, kv: 2) }
    func testTiedLlamaModelGradientsMatchFiniteDifferences() throws { try checkModel(tied: true, kv: 1) }
    func testBF16UntiedLlamaModelGradientsMatchFiniteDifferencesOfFP32() throws {
        try checkModel(tied: false, kv: 2, precision: .bf16)
    }
    func testBF16TiedLlamaModelGradientsMatchFiniteDifferencesOfFP32() throws {
        try checkModel(tied: true, kv: 1, precision: .bf16)
    }
}
