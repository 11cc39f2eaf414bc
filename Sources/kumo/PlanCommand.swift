import ArgumentParser
import Foundation
import KumoCore
import KumoModel
import KumoParallel
import KumoPlan
import KumoTrain

/// `kumo plan`: predicted memory per rank, traffic and step time of a training layout, a search
/// over layouts, and the calibration of this machine that the predictions use.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Predict a run's memory per rank, communication and step time, or search for the fastest layout.",
        discussion: """
            kumo plan --config run.toml --ranks 4 [--hosts 1] [--json]   the layout of a config
            kumo plan --calibrate                                       measure this machine ($KUMO_HOME/hardware)
            kumo plan --search --model 172b --hardware h100 --nodes 64 --global-batch 1024 --seq 4096
            Hardware: local (calibrated) or a preset: \(HardwareProfile.presets.keys.sorted().joined(separator: ", ")).
            Models for --search: model.preset names and \(PlanModels.names.joined(separator: ", ")).
            """)

    @OptionGroup var options: ConfigOptions

    @Option(help: "Ranks (processes) of the run.")
    var ranks = 1

    @Option(
        help: "Hosts the ranks are spread over (default: one for local, else ranks over the preset's ranks per host).")
    var hosts: Int?

    @Option(help: "Hardware profile: local, a preset, or a profile JSON file.")
    var hardware = "local"

    @Option(help: "Threads per rank (default: train.threads; with --search, a host's cores over its ranks).")
    var threads: Int?

    @Flag(help: "Measure this machine (GEMM, attention, memory bandwidth, MPI links) and save it as local.")
    var calibrate = false

    @Flag(help: "Search layouts of --model on --nodes hosts of --hardware.")
    var search = false

    @Option(help: "The model (a model.preset or a planner shape; required by --search, else replaces the config's).")
    var model: String?

    @Option(help: "--search: hosts.")
    var nodes: Int?

    @Option(help: "--search: sequences per step.")
    var globalBatch: Int?

    @Option(help: "--search: tokens per sequence.")
    var seq: Int?

    @Option(help: "--search: layouts to print.")
    var top = 5

    @Option(help: "Tokens to train: adds the days it would take at the predicted speed and at peak.")
    var tokens: Double?

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Under mpirun across hosts: measure the links between them into the local profile.")
    var calibrateLinks = false

    func validate() throws {
        if ranks < 1 { throw ValidationError("--ranks must be at least 1") }
        if let hosts, hosts < 1 || hosts > ranks && !search { throw ValidationError("--hosts must be 1...--ranks") }
        if search && (model == nil || nodes == nil || globalBatch == nil || seq == nil) {
            throw ValidationError("--search needs --model, --nodes, --global-batch and --seq")
        }
        let counts = [("--nodes", nodes), ("--global-batch", globalBatch), ("--seq", seq), ("--threads", threads)]
        for (name, value) in counts + [("--top", top)] where (value ?? 1) < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        if let tokens, !(tokens > 0 && tokens.isFinite) { throw ValidationError("--tokens must be a positive number") }
    }

    func run() throws {
        if calibrateLinks { return try PlanCalibration.links() }
        if calibrate { return try PlanCalibration.run() }
        if search { return try runSearch() }
        let shapeKeys = try model.map { name -> [String] in
            let c = try shape(name)
            return [
                "model.vocab_size=\(c.vocabSize)", "model.hidden_size=\(c.hiddenSize)",
                "model.intermediate_size=\(c.intermediateSize)", "model.num_hidden_layers=\(c.numHiddenLayers)",
                "model.num_attention_heads=\(c.numAttentionHeads)", "model.num_key_value_heads=\(c.numKeyValueHeads)",
                "model.max_position_embeddings=\(c.maxPositionEmbeddings)", "model.parallel_layers=\(c.parallelLayers)",
            ]
        }
        let config = try RunConfig.load(path: options.config, overrides: (shapeKeys ?? []) + options.overrides)
        let profile = try ProfileStore.load(hardware)
        let hostCount =
            hosts ?? (profile.measured ? 1 : (ranks + profile.ranksPerHost - 1) / profile.ranksPerHost)
        let layout = config.trainingLayout(ranks: ranks)
        if profile.peakGFLOPs(layout.precision, threads: threads ?? config.threads) <= 0 {
            throw ValidationFailure(
                "hardware \(profile.name) has no \(layout.precision.rawValue) GEMM rates (a CPU without bf16 units "
                    + "is calibrated in fp32 only): plan train.precision = \"fp32\" or another --hardware")
        }
        let plan: Plan
        do {
            plan = try Plan(layout, hardware: profile, hosts: hostCount, threads: threads ?? config.threads)
        } catch {
            throw ConfigError(error.description)
        }
        try PlanReport(plan: plan, tokens: tokens).print(json: json)
    }

    /// The model called `name`: a `model.preset` or a planner shape.
    private func shape(_ name: String) throws -> ModelConfig {
        guard let shape = PlanModels.config(name) else {
            throw ValidationFailure(
                "--model \(name): not one of \((ModelPreset.names + PlanModels.names).joined(separator: ", "))")
        }
        return shape
    }

    private func runSearch() throws {
        let shape = try shape(model!)
        let profile = try ProfileStore.load(hardware)
        let searching = LayoutSearch(
            model: shape, hardware: profile, nodes: nodes!, globalBatch: globalBatch!, seqLen: seq!, threads: threads)
        let result = searching.run()
        if json {
            let object: [String: Any] = [
                "tried": result.tried, "refused": result.refused, "too_large": result.tooLarge,
                "plans": result.plans.prefix(top).map { PlanReport(plan: $0, tokens: tokens).object },
            ]
            print(
                String(
                    decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            )
            return
        }
        print(
            "\(model!) on \(nodes!) × \(profile.name) (\(searching.ranks) ranks, \(searching.threads) threads each): "
                + "\(result.tried) layouts, \(result.refused) refused, \(result.tooLarge) too large, "
                + "\(result.plans.count) fit")
        for (i, plan) in result.plans.prefix(top).enumerated() {
            print("\(i + 1). " + PlanReport(plan: plan, tokens: tokens).summary)
        }
        if result.plans.isEmpty {
            throw ValidationFailure(
                "no layout fits"
                    + (result.nearest.map { "; the smallest needs \(PlanReport(plan: $0, tokens: nil).summary)" } ?? "")
                    + ": more nodes, or a smaller --global-batch")
        }
    }
}
