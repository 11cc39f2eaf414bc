import ArgumentParser
import Foundation
import KumoRegistry

/// `kumo runs`: the numbered runs of the run registry.
struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List, show, compare, export and import the runs of the run registry.",
        discussion: """
            Every `kumo train` records its run (rank 0) in $KUMO_HOME/registry.sqlite (KUMO_HOME defaults to \
            ~/.kumo), or in the PostgreSQL database KUMO_REGISTRY=postgresql://user@host:port/db names. \
            `kumo dashboard` shows the same runs in a browser.
            """,
        subcommands: [
            RunsList.self, RunsShow.self, RunsCompare.self, RunsExport.self, RunsImport.self,
        ])
}

/// Opens the registry the environment names.
func openRegistry() throws -> RunRegistry { try RunRegistry.open() }

/// A value for a table cell: `-` for nil.
func cell(_ value: Double?, _ format: String = "%.4f") -> String { value.map { String(format: format, $0) } ?? "-" }

/// Prints `value` as one line of registry JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try JSONEncoder.registry.encode(value), as: UTF8.self))
}

/// Rows as a text table with aligned columns.
func textTable(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { i, s in s.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}

struct RunsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the runs, oldest first.")

    @Flag(help: "Print a JSON array of run objects (number, name, experiment, status, run_dir, steps, ...).")
    var json = false
    @Option(help: "Only the runs of this experiment.") var experiment: String?
    @Option(help: "Only the runs with this status: running, completed, failed or killed.") var status: String?

    func run() throws {
        let wanted = try status.map { s in
            guard let v = RunStatus(rawValue: s) else {
                throw ValidationError(
                    "--status \(s): one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return v
        }
        let registry = try openRegistry()
        let runs = try registry.runs(RunFilter(experiment: experiment, status: wanted))
        if json { return try printJSON(runs) }
        guard !runs.isEmpty else {
            print("no runs in \(registry.database.location)" + (experiment == nil && status == nil ? "" : " match"))
            return
        }
        let f = ISO8601DateFormatter()
        print(
            textTable(
                [
                    "#", "name", "experiment", "status", "steps", "last loss", "min loss", "tokens", "tok/s",
                    "started (UTC)",
                ],
                runs.map { r in
                    [
                        "\(r.number)", r.name, r.experiment, r.status.rawValue, "\(r.steps)/\(r.totalSteps)",
                        cell(r.lastLoss), cell(r.minLoss), "\(r.tokens)", cell(r.tokensPerS, "%.0f"),
                        f.string(from: r.startedAt),
                    ]
                }))
    }
}

struct RunsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one run: summary, layout, evaluation scores, checkpoints, config.")

    @Argument(help: "The run's number.") var number: Int
    @Flag(help: "Print the run as one JSON object.") var json = false

    func run() throws {
        let registry = try openRegistry()
        guard let run = try registry.run(number) else {
            throw RegistryError("no run \(number) in \(registry.database.location) (`kumo runs list` lists them)")
        }
        if json { return try printJSON(run) }
        let s = run.summary
        let f = ISO8601DateFormatter()
        let ended = s.endedAt.map { ", ended \(f.string(from: $0))" } ?? ""
        let speed = "tokens/s \(cell(s.tokensPerS, "%.0f")), MFU \(cell(s.mfu.map { $0 * 100 }, "%.1f"))%"
        let layout = s.layout.keys.sorted().map { "\($0) \(s.layout[$0]!)" }
        var lines: [String] = [
            "run \(s.number): \(s.name) (experiment \(s.experiment)), \(s.status.rawValue)"
                + (run.error.map { ": \($0)" } ?? ""),
            "directory: \(s.runDir)",
            "host: \(s.host)" + (run.pid.map { ", pid \($0)" } ?? ""),
            "started \(f.string(from: s.startedAt))" + ended,
            "steps \(s.steps) of \(s.totalSteps), \(s.tokens) tokens; loss last \(cell(s.lastLoss)), min \(cell(s.minLoss)); "
                + speed,
            "layout: " + layout.joined(separator: ", "),
            "config hash \(s.configHash), binary hash \(s.binaryHash ?? "-")",
        ]
        lines += run.evals.map { "eval step \($0.step): \($0.name) \(cell($0.value, "%.6g"))" }
        lines += run.checkpoints.map { "checkpoint step \($0.step): \($0.path)" }
        print(lines.joined(separator: "\n") + "\n\n" + run.config, terminator: "")
    }
}

struct RunsImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract:
            "Record run directories in the registry (also runs made before it existed), or bring them up to date.",
        discussion: "The run directory is the source of truth: its metrics lines replace what the registry held.")

    @Argument(help: "Run directories (written by kumo train).") var directories: [String]

    func run() throws {
        let registry = try openRegistry()
        for directory in directories {
            let (number, status) = try RunRegistration.importRun(directory, into: registry)
            print("run \(number): \(directory) (\(status.rawValue))")
        }
    }
}
