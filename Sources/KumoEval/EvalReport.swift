import Foundation

/// The JSON written by `kumo eval --output`: `results.<task>.<metric>` (DESIGN.md) and the provenance
/// needed to compare runs.
public enum EvalReport {
    /// SHA-256 of a file in hex (coreutils' `sha256sum`), or nil when it cannot be run.
    public static func sha256(_ path: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sha256sum", path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? text.split(separator: " ").first.map(String.init) : nil
    }

    /// The report as a JSON object.
    public static func json(
        results: [TaskResult], model: String, tokenizer: String, options: EvalOptions
    ) -> [String: Any] {
        var files: [String: String] = [:]
        for file in Set(results.flatMap(\.files)) { files[file] = sha256(file) ?? "unavailable" }
        return [
            "model": model, "model_sha256": sha256(model) ?? "unavailable", "tokenizer": tokenizer,
            "num_fewshot": options.numFewshot, "fewshot_seed": Int(options.seed), "limit": options.limit ?? NSNull(),
            "results": Dictionary(uniqueKeysWithValues: results.map { ($0.task.rawValue, $0.metrics) }),
            "versions": Dictionary(
                uniqueKeysWithValues: results.map {
                    ($0.task.rawValue, ["task": $0.task.version, "template": JGLUE.templateVersion])
                }),
            "examples": Dictionary(uniqueKeysWithValues: results.map { ($0.task.rawValue, $0.examples) }),
            "seconds": Dictionary(uniqueKeysWithValues: results.map { ($0.task.rawValue, $0.seconds) }),
            "data_sha256": files,
        ]
    }

    /// The summary table printed on the terminal.
    public static func table(_ results: [TaskResult]) -> String {
        func row(_ cells: [String]) -> String {
            zip(cells, [16, 22, 10, 10, 8, 9]).enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, cell.1 - cell.0.count))
                return i < 2 ? cell.0 + pad : pad + cell.0
            }.joined(separator: " ")
        }
        var lines = [row(["task", "metric", "value", "stderr", "n", "seconds"])]
        for r in results {
            for metric in r.headline {
                lines.append(
                    row([
                        r.task.rawValue, metric, String(format: "%.4f", r.metrics[metric] ?? .nan),
                        r.metrics[metric + "_stderr"].map { String(format: "%.4f", $0) } ?? "-", String(r.examples),
                        String(format: "%.1f", r.seconds),
                    ]))
            }
        }
        return lines.joined(separator: "\n")
    }
}
