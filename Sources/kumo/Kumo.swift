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
            GenerateCommand.self, ServeCommand.self, RunsCommand.self, DashboardCommand.self, PlanCommand.self,
        ])

    /// Runs the command; help and errors are each written in one `write`, so that the messages of
    /// several ranks under mpirun arrive whole instead of interleaved.
    static func main() {
        BLASKernels.reexecWithFasterKernelsIfNeeded()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let (message, code) = report(error)
            if !message.isEmpty {
                let stream = code == .success ? FileHandle.standardOutput : FileHandle.standardError
                stream.write(Data((message + "\n").utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }
}

extension Kumo {
    /// What the user sees for `error`, the one mapping for every command: a `UserFacingError` is shown as
    /// `Error: <description>` with its exit status; anything else (usage errors, help, `ExitCode`) as
    /// ArgumentParser shows it.
    static func report(_ error: any Error) -> (message: String, code: ExitCode) {
        if let error = error as? any UserFacingError { return (fullMessage(for: error), ExitCode(error.exitStatus)) }
        return (fullMessage(for: error), exitCode(for: error))
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
