import ArgumentParser
import Foundation
import KumoRegistry

struct RunsCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare runs: the config keys whose values differ, and a metric at the steps all runs logged.")

    @Argument(help: "Two or more run numbers.") var numbers: [Int]
    @Option(help: "The metrics.jsonl key compared at equal steps.") var metric = "loss"
    @Option(help: "At most this many steps (evenly spaced, always the last common one).") var steps = 10
    @Flag(help: "Print one JSON object: runs, config_diff, steps, values.") var json = false

    struct Comparison: Encodable {
        var runs: [Int]
        /// Key → the value in each run (nil where a run lacks the key).
        var configDiff: [String: [String?]]
        var metric: String
        var steps: [Int]
        /// Run number (as a string) → the metric at each of `steps`.
        var values: [String: [Double?]]
    }

    func validate() throws {
        if numbers.count < 2 { throw ValidationError("give two or more run numbers") }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
    }

    func run() throws {
        let registry = try openRegistry()
        let details = try numbers.map { n in
            guard let d = try registry.run(n) else {
                throw RegistryError("no run \(n) in \(registry.database.location)")
            }
            return d
        }
        // The training lines' values by step (a step logged twice, after a rollback, keeps its last line).
        let metrics = try zip(numbers, details).map { n, d in
            Dictionary(
                RunMetrics(lines: try registry.metricsLines(run: n), summary: d.summary).train.map {
                    ($0.step, $0.values)
                }
            ) { $1 }
        }
        let keys = Set(details.flatMap(\.configValues.keys)).sorted()
        var diff: [String: [String?]] = [:]
        for key in keys {
            let values = details.map { $0.configValues[key] }
            if Set(values).count > 1 { diff[key] = values }
        }
        let common = metrics.dropFirst().reduce(Set(metrics[0].keys)) { $0.intersection($1.keys) }.sorted()
        let picked = Self.evenlySpaced(common, count: steps)
        var values: [String: [Double?]] = [:]
        for (n, m) in zip(numbers, metrics) {
            values[String(n)] = picked.map { m[$0]?[metric] }
        }
        let comparison = Comparison(runs: numbers, configDiff: diff, metric: metric, steps: picked, values: values)
        if json { return try printJSON(comparison) }
        print("config keys that differ:")
        print(
            diff.isEmpty
                ? "  (none)"
                : textTable(
                    ["key"] + numbers.map { "run \($0)" },
                    diff.keys.sorted().map { k in [k] + diff[k]!.map { $0 ?? "-" } }
                ))
        print("\n\(metric) at the steps every run logged:")
        print(
            picked.isEmpty
                ? "  (no step in common)"
                : textTable(
                    ["step"] + numbers.map { "run \($0)" },
                    picked.indices.map { i in ["\(picked[i])"] + numbers.map { cell(values[String($0)]![i], "%.6g") } })
        )
    }

    /// At most `count` of `steps`, evenly spaced, the last one always among them.
    static func evenlySpaced(_ steps: [Int], count: Int) -> [Int] {
        guard steps.count > count else { return steps }
        if count == 1 { return [steps.last!] }
        return (0..<count).map { steps[$0 * (steps.count - 1) / (count - 1)] }
    }
}

struct RunsExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a run's metrics lines as CSV or JSON Lines.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, jsonl }

    @Argument(help: "The run's number.") var number: Int
    @Option(help: "csv (one column per key, `step` first) or jsonl (the lines as metrics.jsonl has them).")
    var format: Format = .csv
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func run() throws {
        let registry = try openRegistry()
        guard try registry.run(number) != nil else {
            throw RegistryError("no run \(number) in \(registry.database.location)")
        }
        let lines = try registry.metricsLines(run: number)
        let text = format == .jsonl ? lines.map { $0 + "\n" }.joined() : Self.csv(lines)
        if let output {
            do {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                throw RegistryError("cannot write \(output): \(error.localizedDescription)")
            }
        } else {
            print(text, terminator: "")
        }
    }

    /// One column per key (`step` first, then the others sorted), one row per line; empty where a line lacks a key.
    static func csv(_ lines: [String]) -> String {
        let objects = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let keys = Set(objects.flatMap(\.keys)).subtracting(["step"]).sorted()
        let columns = ["step"] + keys
        func field(_ value: Any?) -> String {
            switch value {
            case let s as String: return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            case let n as NSNumber:
                let d = n.doubleValue
                return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
            default: return ""
            }
        }
        return
            ([columns.joined(separator: ",")] + objects.map { o in columns.map { field(o[$0]) }.joined(separator: ",") })
            .map { $0 + "\n" }.joined()
    }
}
