import ArgumentParser
import Foundation
import KumoComm
import KumoCore
import KumoData
import KumoTrain

/// `kumo bench`: performance measurements.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure performance.", subcommands: [BenchTrain.self, BenchComm.self])
}

/// `kumo bench train`: training throughput on synthetic tokens, as one JSON object.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "Time training steps on synthetic data; prints tokens/s, step time, MFU, GFLOP/s and peak memory "
            + "(rank 0's, and the largest of all ranks under mpirun; rank 0 prints).")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Timed steps (after the warmup steps).")
    var steps: Int = 10

    @Option(help: "Untimed warmup steps.")
    var warmup: Int = 2

    @Flag(help: "Print one JSON object on standard output.")
    var json = false

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if warmup < 0 { throw ValidationError("--warmup must be >= 0") }
    }

    func run() throws {
        let config = try RunConfig.load(
            path: options.config,
            overrides: options.overrides + ["data.synthetic=true", "train.steps=\(steps + warmup)"])
        let (world, topology) = CommWorld.startByHost(timeoutSeconds: config.parallel.commTimeoutSeconds)
        try RankAgreement.check(world: world, config: config)
        let trainer = try Trainer(
            config: config, stream: try TrainingData.make(config).stream, world: world,
            hosts: topology.hostsByMeshRank)
        var times: [Double] = []
        for i in 0..<(steps + warmup) {
            let m = try trainer.trainStep()
            if i >= warmup { times.append(m.stepSeconds) }
            if !json && world.rank == 0 {
                printErr(String(format: "step %d: %.3f s, loss %.4f", m.step, m.stepSeconds, m.loss))
            }
        }
        var peakRSS = [Double(SystemInfo.peakRSSBytes)]
        world.allReduce(&peakRSS, op: .max)
        CommWorld.finish(world)
        guard world.rank == 0 else { return }
        times.sort()
        let median =
            times.count % 2 == 1
            ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        let tps = Double(trainer.tokensPerStep) / median
        let gflops = tps * trainer.flopsPerToken / 1e9
        let fields: [(String, String)] = [
            ("tokens_per_s", "\(tps)"), ("step_s_median", "\(median)"), ("mfu", "\(gflops / trainer.peakGFLOPs)"),
            ("achieved_gflops", "\(gflops)"), ("peak_gflops", "\(trainer.peakGFLOPs)"),
            ("peak_rss_bytes", "\(SystemInfo.peakRSSBytes)"), ("peak_rss_bytes_max_rank", "\(Int(peakRSS[0]))"),
            ("threads", "\(config.threads)"),
            ("precision", "\"\(config.precision.rawValue)\""),
            ("bf16_gemm", config.precision == .bf16 ? "\"\(BF16GEMM.backend.rawValue)\"" : "null"),
            ("parameters", "\(trainer.model.layout.count)"), ("flops_per_token", "\(trainer.flopsPerToken)"),
            ("tokens_per_step", "\(trainer.tokensPerStep)"), ("steps", "\(steps)"), ("ranks", "\(world.size)"),
        ]
        if json {
            print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            for (k, v) in fields { print("\(k): \(v)") }
        }
    }
}

/// A refusal of the command line itself, shown as is with exit code 1.
struct ValidationFailure: UserFacingError {
    var description: String
    init(_ description: String) { self.description = description }
}
