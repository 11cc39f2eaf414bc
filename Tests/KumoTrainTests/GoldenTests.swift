import Foundation
import KumoCore
import KumoData
import KumoInterop
import KumoModel
import XCTest

@testable import KumoTrain

/// Kumo against PyTorch (float64) on the files written by scripts/golden/make_golden.py
/// (fp32) and make_golden_bf16.py (bf16 products): logits, loss, every gradient, and 5 AdamW
/// steps with warmup, cosine decay and clipping.
final class GoldenTests: XCTestCase {
    private static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden")
    /// Norm-wise relative error bound: ‖kumo − torch‖ / ‖torch‖ (set per check).
    private var tolerance = 1e-4
    /// The largest relative error a check measured (printed at its end).
    private var worst = 0.0

    private func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var num = 0.0
        var den = 0.0
        for (x, y) in zip(a, b) {
            num += Double(x - y) * Double(x - y)
            den += Double(y) * Double(y)
        }
        return (num / max(den, 1e-30)).squareRoot()
    }

    private func assertClose(
        _ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let err = relativeError(a, b)
        worst = max(worst, err)
        XCTAssertLessThan(err, tolerance, "\(what): relative error \(err)", file: file, line: line)
    }

    private func metadata<T: Decodable>(_ f: SafeTensorsFile, _ key: String, _ type: T.Type) throws -> T {
        let text = try XCTUnwrap(f.metadata[key], "golden file lacks metadata \(key)")
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// The model configuration of golden file `f` (a mixture of experts where it names experts).
    private func config(_ f: SafeTensorsFile) throws -> ModelConfig {
        var config = ModelConfig(
            vocabSize: try metadata(f, "vocab_size", Int.self), hiddenSize: try metadata(f, "hidden_size", Int.self),
            intermediateSize: try metadata(f, "intermediate_size", Int.self),
            numHiddenLayers: try metadata(f, "num_hidden_layers", Int.self),
            numAttentionHeads: try metadata(f, "num_attention_heads", Int.self),
            numKeyValueHeads: try metadata(f, "num_key_value_heads", Int.self), maxPositionEmbeddings: 64,
            ropeTheta: try metadata(f, "rope_theta", Double.self),
            rmsNormEps: try metadata(f, "rms_norm_eps", Double.self),
            tieWordEmbeddings: try metadata(f, "tie_word_embeddings", Bool.self),
            parallelLayers: try metadata(f, "parallel_layers", Bool.self))
        if f.metadata["num_local_experts"] != nil {
            config.numLocalExperts = try metadata(f, "num_local_experts", Int.self)
            config.numExpertsPerTok = try metadata(f, "num_experts_per_tok", Int.self)
            config.routerAuxLossCoef = try metadata(f, "router_aux_loss_coef", Double.self)
            config.outputRouterLogits = try metadata(f, "output_router_logits", Bool.self)
        }
        return config
    }

    /// The loss Hugging Face reports for the last pass: mean cross-entropy `ce`, plus the
    /// coefficient times the load-balancing loss for a mixture that outputs its router logits.
    private func hfLoss(_ model: LlamaModel, ce: Double) -> Double {
        let c = model.config
        guard c.outputRouterLogits, let router = model.routerStatistics() else { return ce }
        return ce + c.routerAuxLossCoef * router.auxLoss
    }

    /// Compares a model in `precision` with golden-`variant`.safetensors within `tolerance`.
    private func check(variant: String, precision: Precision = .fp32, tolerance: Double = 1e-4) throws {
        self.tolerance = tolerance
        worst = 0
        defer { print("golden \(variant): largest relative error \(worst) (bound \(tolerance))") }
        let f = try SafeTensorsFile(path: Self.directory.appendingPathComponent("golden-\(variant).safetensors").path)
        let config = try config(f)
        let batch = try metadata(f, "batch", Int.self)
        let seq = try metadata(f, "seq_length", Int.self)
        Threads.set(1)
        let model = try LlamaModel(config: config)
        model.precision = precision
        XCTAssertEqual(
            Set(model.layout.tensors.map(\.name)),
            Set(f.entries.keys.filter { $0.hasPrefix("step5.") }.map { String($0.dropFirst(6)) }))
        for t in model.layout.tensors {
            let values = try f.floats(t.name)
            XCTAssertEqual(values.count, t.count, t.name)
            (model.params.pointer + t.offset).update(from: values, count: t.count)
        }
        let inputs = try f.int32s("input_ids")
        let targets = try f.int32s("targets")
        let scored = targets.filter { $0 != CrossEntropyKernel.ignoreIndex }.count

        // Forward, loss and gradients of the initial weights.
        let logits = inputs.withUnsafeBufferPointer {
            model.forward(tokens: $0.baseAddress!, batch: batch, seqLen: seq)
        }
        assertClose(
            Array(UnsafeBufferPointer(start: logits, count: batch * seq * config.vocabSize)), try f.floats("logits"),
            "\(variant) logits")
        model.zeroGrads()
        let (lossSum, count) = inputs.withUnsafeBufferPointer { i in
            targets.withUnsafeBufferPointer { t in
                model.lossAndBackward(
                    inputs: i.baseAddress!, targets: t.baseAddress!, batch: batch, seqLen: seq,
                    gradScale: 1 / Float(scored))
            }
        }
        XCTAssertEqual(count, scored)
        let loss = hfLoss(model, ce: lossSum / Double(count))
        let torchLoss = Double(try f.floats("loss")[0])
        XCTAssertLessThan(abs(loss - torchLoss) / torchLoss, tolerance, "\(variant) loss \(loss) vs \(torchLoss)")
        for t in model.layout.tensors {
            let grad = Array(UnsafeBufferPointer(start: model.grads.pointer + t.offset, count: t.count))
            assertClose(grad, try f.floats("grad." + t.name), "\(variant) grad \(t.name)")
        }

        // Five AdamW steps on the same batch.
        let schedule = LRSchedule(
            maxLR: try metadata(f, "optim.lr", Double.self), minLR: try metadata(f, "optim.min_lr", Double.self),
            warmupSteps: try metadata(f, "optim.warmup_steps", Int.self),
            decaySteps: try metadata(f, "optim.steps", Int.self))
        let optimizer = AdamW(
            layout: model.layout,
            settings: AdamWSettings(
                beta1: Float(try metadata(f, "optim.beta1", Double.self)),
                beta2: Float(try metadata(f, "optim.beta2", Double.self)),
                eps: Float(try metadata(f, "optim.eps", Double.self)),
                weightDecay: Float(try metadata(f, "optim.weight_decay", Double.self)),
                gradClip: try metadata(f, "optim.grad_clip", Double.self)))
        let torchLosses = try f.floats("losses")
        let torchNorms = try f.floats("grad_norms")
        let torchLRs = try f.floats("lrs")
        for step in 0..<torchLosses.count {
            model.zeroGrads()
            let (sum, n) = inputs.withUnsafeBufferPointer { i in
                targets.withUnsafeBufferPointer { t in
                    model.lossAndBackward(
                        inputs: i.baseAddress!, targets: t.baseAddress!, batch: batch, seqLen: seq,
                        gradScale: 1 / Float(scored))
                }
            }
            let norm = AdamW.gradNorm(model.grads)
            let lr = schedule.lr(at: step)
            XCTAssertLessThan(
                abs(hfLoss(model, ce: sum / Double(n)) - Double(torchLosses[step])) / Double(torchLosses[step]),
                tolerance,
                "\(variant) step \(step) loss")
            XCTAssertLessThan(
                abs(norm - Double(torchNorms[step])) / Double(torchNorms[step]), tolerance,
                "\(variant) step \(step) grad norm \(norm) vs \(torchNorms[step])")
            XCTAssertEqual(Float(lr), torchLRs[step], accuracy: 1e-9, "\(variant) step \(step) lr")
            optimizer.update(params: model.params, grads: model.grads, lr: lr, gradNorm: norm)
        }
        for t in model.layout.tensors {
            let p = Array(UnsafeBufferPointer(start: model.params.pointer + t.offset, count: t.count))
            let expected = try f.floats("step5." + t.name)
            assertClose(p, expected, "\(variant) after 5 steps \(t.name)")
            // The update moved the parameter: the comparison is not trivially about the initial values.
            XCTAssertGreaterThan(
                relativeError(try f.floats(t.name), expected), 1e-3, "\(variant) \(t.name) barely moved")
        }
    }

    func testMultiHeadAttentionModelMatchesPyTorch() throws { try check(variant: "mha") }
    func testGroupedQueryAttentionModelMatchesPyTorch() throws { try check(variant: "gqa") }
    func testMultiQueryAttentionModelMatchesPyTorch() throws { try check(variant: "mqa") }
    func testParallelLayersModelMatchesPyTorch() throws { try check(variant: "parallel") }
    func testTiedEmbeddingModelMatchesPyTorch() throws { try check(variant: "tied") }

    /// A Mixtral (4 experts, top-2, load-balancing loss in the loss) against transformers'
    /// MixtralForCausalLM (scripts/golden/make_mixtral_golden.py): logits, the loss with its
    /// load-balancing term, every router and expert gradient and 5 AdamW steps; then the
    /// load-balancing loss alone against transformers' aux_loss.
    func testMixtureOfExpertsModelMatchesTransformersMixtral() throws {
        try check(variant: "moe")
        let f = try SafeTensorsFile(path: Self.directory.appendingPathComponent("golden-moe.safetensors").path)
        let model = try LlamaModel(config: try config(f))
        for t in model.layout.tensors {
            (model.params.pointer + t.offset).update(from: try f.floats(t.name), count: t.count)
        }
        let inputs = try f.int32s("input_ids")
        let (batch, seq) = (try metadata(f, "batch", Int.self), try metadata(f, "seq_length", Int.self))
        _ = inputs.withUnsafeBufferPointer { model.forward(tokens: $0.baseAddress!, batch: batch, seqLen: seq) }
        let aux = try XCTUnwrap(model.routerStatistics()).auxLoss
        let torchAux = Double(try f.floats("aux_loss")[0])
        print("golden moe: aux loss \(aux) vs transformers \(torchAux)")
        XCTAssertLessThan(abs(aux - torchAux) / torchAux, 1e-5, "aux loss \(aux) vs transformers \(torchAux)")
    }

    /// bf16 products against PyTorch rounding the same operands: only fp32 against float64
    /// accumulation differs (and, rarely, a value on a rounding tie). Measured up to 3e-5;
    /// an fp32 model misses these goldens by 1.7e-3 to 7e-3 (logits and gradients), so 2e-4
    /// tells the two apart.
    func testBF16GroupedQueryAttentionModelMatchesPyTorchBF16Products() throws {
        try check(variant: "bf16-gqa", precision: .bf16, tolerance: 2e-4)
    }
    func testBF16TiedEmbeddingModelMatchesPyTorchBF16Products() throws {
        try check(variant: "bf16-tied", precision: .bf16, tolerance: 2e-4)
    }

    /// SFT rows (one example per row; prompt tokens and padding masked with -100): the loss averages
    /// the response tokens only, and every gradient and the AdamW steps match PyTorch's
    /// cross_entropy(ignore_index=-100). The golden rows are the rows `SFTSource` makes of the examples.
    func testMaskedSFTLossMatchesPyTorch() throws {
        try check(variant: "sft")
        let f = try SafeTensorsFile(path: Self.directory.appendingPathComponent("golden-sft.safetensors").path)
        let examples = try metadata(f, "sft_examples", [[[Int32]]].self)
        let seq = try metadata(f, "seq_length", Int.self)
        let source = SFTSource(
            examples: examples.map { PromptResponseTokens(prompt: $0[0], response: $0[1]) }, seqLength: seq,
            vocabSize: 96, pad: try metadata(f, "eos_id", Int32.self), packing: false, truncate: true, seed: 1,
            numSamples: 0)
        XCTAssertEqual(source.stats.rows, examples.count)
        let batch = Batch(batch: examples.count, seqLen: seq)
        try batch.load(from: source, firstSample: 0)
        func rows(_ inputs: [Int32], _ targets: [Int32]) -> Set<[Int32]> {
            Set(
                (0..<examples.count).map { r in
                    Array(inputs[r * seq..<(r + 1) * seq] + targets[r * seq..<(r + 1) * seq])
                })
        }
        let targets = try f.int32s("targets")
        XCTAssertEqual(rows(batch.inputs, batch.targets), rows(try f.int32s("input_ids"), targets))
        XCTAssertGreaterThanOrEqual(
            targets.filter { $0 == -100 }.count, targets.count / 2, "half the targets are masked")
    }
}
