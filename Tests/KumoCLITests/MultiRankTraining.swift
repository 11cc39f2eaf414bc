import Foundation
import XCTest

/// A finished `kumo train` run: its metrics lines, final parameters and standard error.
struct TrainedRun {
    var metrics: [[String: Any]]
    var params: [Float]
    var err: String
    var losses: [Double] { metrics.map { $0["loss"] as! Double } }
}

/// The tiny-preset runs the multi-rank tests compare: synthetic data, sequences of 32, one
/// thread per rank.
enum TinyRun {
    /// Optimizer steps of an equivalence run.
    static let steps = 20

    /// Arguments for `steps` steps with the given micro-batch and global batch.
    static func args(micro: Int, global: Int = 8, steps: Int = steps) -> [String] {
        [
            "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=32",
            "--set", "train.threads=1", "--set", "train.steps=\(steps)", "--set", "train.micro_batch_size=\(micro)",
            "--set", "train.global_batch_size=\(global)",
        ]
    }
}

extension XCTestCase {
    /// The objects of the run directory `run`'s metrics.jsonl, one per line.
    func metricsLines(_ run: String) throws -> [[String: Any]] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// The loss of every line of `run`'s metrics.jsonl (a run without evaluation lines).
    func metricsLosses(_ run: String) throws -> [Double] {
        try metricsLines(run).map { try XCTUnwrap($0["loss"] as? Double, "\($0)") }
    }

    /// Runs `kumo train` on `ranks` ranks (mpirun above one) and reads back its metrics and
    /// final parameters.
    func trainRun(ranks: Int, _ args: [String]) throws -> TrainedRun {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let all = ["train"] + args + ["--run-dir", dir + "/run", "--dump-params", dir + "/params.bin"]
        let r = ranks == 1 ? try KumoProcess.run(all) : try KumoProcess.runMPI(ranks: ranks, all)
        XCTAssertEqual(r.status, 0, "\(ranks) ranks: \(r.err)")
        let metrics = try metricsLines(dir + "/run")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/params.bin"))
        let params = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return TrainedRun(metrics: metrics, params: params, err: r.err)
    }

    /// Per-step loss within 1e-5 relative; final parameters within 1e-5 relative in the L2 norm,
    /// and no element more than 1e-4 apart. (Summing the same gradients in another order is all
    /// that differs; AdamW turns those last-bit differences into element moves of a fraction of
    /// the learning rate where a gradient is near zero: the one-rank run regrouped into other
    /// micro-batches moves single elements by about 5e-5 over 20 steps too.)
    func assertEquivalent(_ run: TrainedRun, _ reference: TrainedRun, _ label: String) {
        XCTAssertEqual(run.losses.count, reference.losses.count, label)
        let lossError = zip(run.losses, reference.losses).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(lossError, 1e-5, "\(label): max relative loss error \(lossError)")
        XCTAssertEqual(run.params.count, reference.params.count, label)
        let diffs = zip(run.params, reference.params).map { Double($0 - $1) }
        let relative =
            diffs.reduce(0) { $0 + $1 * $1 }.squareRoot()
            / reference.params.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let maxDiff = diffs.map(abs).max() ?? .infinity
        XCTAssertLessThanOrEqual(relative, 1e-5, "\(label): relative L2 parameter error \(relative)")
        XCTAssertLessThanOrEqual(maxDiff, 1e-4, "\(label): max parameter difference \(maxDiff)")
        print(
            "\(label): max relative loss error \(lossError), relative L2 parameter error \(relative), "
                + "max parameter difference \(maxDiff)")
    }
}
