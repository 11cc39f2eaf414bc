import ArgumentParser
import Foundation
import KumoCore
import KumoTrain

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

    /// Runs the command; help and errors are each written in one `write`, so that the messages of
    /// several ranks under mpirun arrive whole instead of interleaved.
    static func main() {
        BLASKernels.reexecWithFasterKernelsIfNeeded()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty {
                let stream = code == .success ? FileHandle.standardOutput : FileHandle.standardError
                stream.write(Data((message + "\n").utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }
}

/// Options shared by commands that read a run configuration.
struct ConfigOptions: ParsableArguments {
    @Option(
        help: "TOML configuration file (\(ConfigSchema.sections.map { "[\($0)]" }.joined(separator: " "))).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override a key, e.g. --set train.steps=10 (repeatable).")
    var overrides: [String] = []
}
