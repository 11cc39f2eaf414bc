import KumoCore
import KumoModel
import KumoParallel
import XCTest

@testable import KumoPlan

/// The planner's formulas against cases worked by hand.
final class PlanFormulaTests: XCTestCase {
    private let flat = HardwareProfile.flat

    private let model = ModelConfig(
        vocabSize: 1000, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, maxPositionEmbeddings: 128)

    private func layout(_ parallel: ParallelConfig = ParallelConfig(), ranks: Int = 1, micro: Int = 2, global: Int = 2)
        -> TrainingLayout
    {
        TrainingLayout(
            model: model, parallel: parallel, ranks: ranks, batch: BatchShape(micro: micro, global: global, seqLen: 32))
    }

    /// rows = 2 × 32 = 64; per block QKV 64×(64+2·32)×64, O 64×64×64, gate-up 64×256×64, down 64×64×128;
    /// head 64×1000×64; three products each (forward, two backward) at 100 GFLOP/s.
    func testGEMMTimeIsThreeProductsOfEveryProjectionAtTheProfilesRate() {
        let model = StepTimeModel(profile: flat, threads: 1, ranksPerHost: 1)
        let products: [Double] = [64 * 128 * 64, 64 * 64 * 64, 64 * 256 * 64, 64 * 64 * 128]
        let block = products.reduce(0, +)
        let head: Double = 64 * 1000 * 64
        let flops = 3 * 2 * (2 * block + head)
        let t = model.microBatch(layout(), shard: .whole(self.model))
        XCTAssertEqual(t.gemm, flops / 100e9, accuracy: 1e-15)
        // Attention: 12 · (4 heads × 16) · 32 tokens per token, 64 tokens, 2 layers.
        let attention: Double = 2 * 12 * 64 * 32 * 64
        XCTAssertEqual(t.attention, attention / 100e9, accuracy: 1e-15)
    }

    /// Plain data parallelism all-reduces the gradients once a step: 2(n−1)/n of 4 bytes per parameter;
    /// ZeRO-3 per micro-batch reduce-scatters them and gathers the parameters twice, (n−1)/n each.
    func testDataParallelBytesFollowTheRingFormulas() {
        let p = ParameterLayout(model).count
        let plain = CommVolume(
            layout(ranks: 4, micro: 1, global: 8), ranksPerHost: 8, stageParameters: p, stageLayers: 2, hasHead: true)
        XCTAssertEqual(plain.groups.map(\.group), ["dp"])
        XCTAssertEqual(plain.groups[0].bytesPerStep, 2 * 3.0 / 4 * 4 * Double(p))
        let zero3 = CommVolume(
            layout(ParallelConfig(zeroStage: .parameters), ranks: 4, micro: 1, global: 8), ranksPerHost: 8,
            stageParameters: p, stageLayers: 2, hasHead: true)
        // 2 micro-batches per rank.
        XCTAssertEqual(zero3.groups[0].bytesPerStep, 2 * 3.0 / 4 * (4 * Double(p) + 2 * 4 * Double(p)))
        XCTAssertEqual(zero3.groups[0].link, .intraHost)
    }

    /// Tensor parallelism all-reduces rows × hidden fp32 activations four times per block; past a host the
    /// data-parallel group crosses hosts, and in levels sends 1/(ranks per host) of its bytes across.
    func testTensorAndHostCrossingTraffic() {
        let p = ParameterLayout(model).count
        let t = layout(ParallelConfig(tensor: 2), ranks: 8, micro: 1, global: 4)
        let volume = CommVolume(t, ranksPerHost: 4, stageParameters: p, stageLayers: 2, hasHead: true)
        let tp = volume.groups.first { $0.group == "tp" }!
        let rowBytes: Double = 4 * 32 * 64
        XCTAssertEqual(tp.bytesPerStep, 8 * rowBytes)
        XCTAssertEqual(tp.link, .intraHost)
        let dp = volume.groups.first { $0.group == "dp" }!
        XCTAssertEqual(dp.link, .interHost)
        XCTAssertEqual(dp.interHostBytesPerStep, dp.bytesPerStep / 2)
        var flat = t
        flat.parallel.hierarchical = false
        let flatDP = CommVolume(flat, ranksPerHost: 4, stageParameters: p, stageLayers: 2, hasHead: true).groups
            .first { $0.group == "dp" }!
        XCTAssertEqual(flatDP.interHostBytesPerStep, flatDP.bytesPerStep)
    }

    /// Between measured points rates are interpolated in log-size; beyond them they are the edge's.
    func testRatesInterpolateInLogSizeAndClampAtTheEdges() {
        var profile = flat
        profile.gemm = [
            .init(
                precision: "fp32", threads: 1,
                points: [
                    .init(m: 16, n: 16, k: 16, gflops: 10), .init(m: 16, n: 64, k: 64, gflops: 30),
                    .init(m: 64, n: 16, k: 16, gflops: 50), .init(m: 64, n: 64, k: 64, gflops: 70),
                ])
        ]
        XCTAssertEqual(profile.gemmGFLOPs(.fp32, threads: 1, m: 32, n: 32, k: 32), 40, accuracy: 1e-12)
        XCTAssertEqual(profile.gemmGFLOPs(.fp32, threads: 1, m: 16, n: 32, k: 1000), 20, accuracy: 1e-12)
        XCTAssertEqual(profile.gemmGFLOPs(.fp32, threads: 1, m: 4096, n: 8, k: 8), 50)
        XCTAssertEqual(profile.peakGFLOPs(.fp32, threads: 1), 70)
        profile.runtime = [.init(ranks: 1, bytes: 100), .init(ranks: 2, bytes: 150), .init(ranks: 4, bytes: 170)]
        XCTAssertEqual(profile.runtimeBytes(ranksOnHost: 3), 160)
        XCTAssertEqual(profile.runtimeBytes(ranksOnHost: 8), 210)
    }

    /// The pipeline's bubble is (p − 1) micro-batch slots; more ranks than cores slow compute.
    func testBubbleAndOversubscription() throws {
        let t = layout(ParallelConfig(pipeline: 2), ranks: 2, micro: 1, global: 4)
        let plan = try Plan(t, hardware: flat, hosts: 1, threads: 1)
        let perMicroBatch = plan.time.gemm / 4 + plan.time.attention / 4 + plan.time.memoryBound / 4
        XCTAssertEqual(plan.time.bubble, perMicroBatch, accuracy: 1e-12)
        let crowded = StepTimeModel(profile: flat, threads: 4, ranksPerHost: 4)
        XCTAssertEqual(crowded.oversubscription, 2)
    }

    /// GPT-3 175B's 300B tokens at Fugaku's fp32 peak (158,976 nodes × 6.76 TFLOP/s = 1.07 EFLOP/s):
    /// 6·N·D plus attention, about 3.4 days.
    func testGPT3OnFugakusPeakTakesAboutThreeAndAHalfDays() throws {
        let gpt3 = try XCTUnwrap(PlanModels.config("gpt3-175b"))
        let fugaku = try XCTUnwrap(HardwareProfile.presets["fugaku"])
        let peak = 158_976 * fugaku.peakGFLOPs(.fp32, threads: 48) * 1e9
        XCTAssertEqual(peak, 1.07e18, accuracy: 0.01e18)
        let days = 300e9 * gpt3.flopsPerToken(seqLen: 2048) / peak / 86400
        XCTAssertEqual(days, 3.5, accuracy: 0.15)
    }

    /// A profile lacking a measurement, or with a rate that is not positive, is named as such;
    /// runtime points with one rank count twice do not divide by zero.
    func testIncompleteProfilesAreNamed() {
        XCTAssertNil(flat.missingMeasurement)
        var noAttention = flat
        noAttention.attention = []
        XCTAssertEqual(noAttention.missingMeasurement, "no attention rates")
        var zeroRate = flat
        zeroRate.memoryBandwidth = [.init(threads: 1, bytesPerSecond: 0)]
        XCTAssertEqual(zeroRate.missingMeasurement, "a rate that is not a positive number")
        var twice = flat
        twice.runtime = [.init(ranks: 2, bytes: 100), .init(ranks: 2, bytes: 300)]
        XCTAssertEqual(twice.runtimeBytes(ranksOnHost: 4), 100)
    }
}
