import ArgumentParser

/// The `kumo` command line.
@main
struct Kumo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train, benchmark and sample LLaMA-family language models on CPUs.",
        subcommands: [
            Train.self, Bench.self, TokenizerCommand.self, DataCommand.self, ConvertCommand.self, LogitsCommand.self,
            EvalCommand.self,
            GenerateCommand.self, ServeCommand.self,
        ])
}

/// Options shared by commands that read a run configuration.
struct ConfigOptions: ParsableArguments {
    @Option(help: "TOML configuration file ([model] [data] [train] [optim] [parallel] [checkpoint] [log]).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override a key, e.g. --set train.steps=10 (repeatable).")
    var overrides: [String] = []
}
