import Foundation
import XCTest

/// `kumo plan`: its memory parts are the bytes the trainer allocates (the `memory.*` metrics), and
/// it reads hardware from presets or from `kumo plan --calibrate`.
final class PlanCLITests: XCTestCase {
    private let tiny = [
        "model.preset=tiny", "data.synthetic=true", "train.seq_length=64", "train.micro_batch_size=2",
        "train.global_batch_size=8", "train.threads=1", "train.steps=2",
    ]

    private func plan(_ args: [String], home: String? = nil) throws -> [String: Any] {
        let r = try KumoProcess.run(
            ["plan", "--json"] + args, environment: home.map { ["KUMO_HOME": $0] } ?? [:])
        XCTAssertEqual(r.status, 0, r.err)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], r.out)
    }

    /// Rank 0's allocation report (metrics.jsonl) equals the plan's first stage, part by part, on
    /// 1 rank, ZeRO-3 over 2 ranks, tp=2 × pp=2 over 4 ranks with full recompute (whose slots share one
    /// set of block tensors) and pp=2 with stage recompute (whose two slots keep their stage inputs).
    func testPredictedPartsEqualTheTrainersAllocationReport() throws {
        for (ranks, extra) in [
            (1, []), (2, ["parallel.zero_stage=3"]),
            (4, ["parallel.tensor=2", "parallel.pipeline=2", "train.recompute=full"]),
            (2, ["parallel.pipeline=2", "train.recompute=stage"]),
        ] {
            let settings = (tiny + extra).flatMap { ["--set", $0] }
            let run = try trainRun(ranks: ranks, settings)
            let measured = try XCTUnwrap(run.metrics.last)
            let planned = try plan(settings + ["--ranks", "\(ranks)", "--hardware", "h100"])
            let memory = try XCTUnwrap(planned["memory"] as? [String: Any])
            let stage = try XCTUnwrap((memory["stages"] as? [[String: Any]])?.first)
            let pairs = [
                ("memory.params_bytes", "weights"), ("memory.grads_bytes", "gradients"),
                ("memory.optimizer_bytes", "optimizer"), ("memory.activations_bytes", "activations"),
            ]
            for (metric, part) in pairs {
                XCTAssertEqual(measured[metric] as? Double, (stage[part] as? Int).map(Double.init), "\(extra): \(part)")
            }
            XCTAssertEqual(
                measured["memory.gathered_params_bytes"] as? Double ?? 0,
                Double(stage["gathered_weights"] as? Int ?? -1), "\(extra): gathered")
            for key in [
                "peak_memory_bytes_per_rank", "step_s", "tokens_per_s", "mfu", "flops_per_step", "comm_bytes_per_step",
            ] {
                XCTAssertNotNil(planned[key], key)
            }
        }
    }

    /// Without a calibrated profile the command says how to make one; `--calibrate` makes it, with
    /// GEMM rates, links and runtime overheads, and plans then use it.
    func testCalibrationIsRequiredThenUsed() throws {
        let home = try KumoProcess.temporaryDirectory(for: self)
        let missing = try KumoProcess.run(["plan"] + tiny.flatMap { ["--set", $0] }, environment: ["KUMO_HOME": home])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.err.contains("kumo plan --calibrate"), missing.err)
        let calibrated = try KumoProcess.run(["plan", "--calibrate"], environment: ["KUMO_HOME": home])
        XCTAssertEqual(calibrated.status, 0, calibrated.err)
        let saved = try Data(contentsOf: URL(fileURLWithPath: home + "/hardware/local.json"))
        let profile = try XCTUnwrap(JSONSerialization.jsonObject(with: saved) as? [String: Any])
        let gemm = try XCTUnwrap(profile["gemm"] as? [[String: Any]])
        XCTAssertTrue(gemm.contains { $0["precision"] as? String == "fp32" && $0["threads"] as? Int == 1 })
        XCTAssertEqual((profile["runtime"] as? [[String: Any]])?.compactMap { $0["ranks"] as? Int }, [1, 2, 4])
        let intra = try XCTUnwrap(profile["intraHost"] as? [String: Any])
        XCTAssertGreaterThan(intra["bandwidthBytesPerSecond"] as? Double ?? 0, 0)
        let planned = try plan(tiny.flatMap { ["--set", $0] }, home: home)
        XCTAssertEqual(planned["hardware"] as? String, "local")
        XCTAssertGreaterThan(planned["step_s"] as? Double ?? 0, 0)
    }

    /// The search over 172B on 64 H100 nodes returns fitting layouts, fastest first.
    func testSearchRanksFittingLayoutsFastestFirst() throws {
        let r = try KumoProcess.run([
            "plan", "--search", "--json", "--model", "172b", "--hardware", "h100", "--nodes", "64", "--global-batch",
            "1024", "--seq", "4096", "--top", "3",
        ])
        XCTAssertEqual(r.status, 0, r.err)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let plans = try XCTUnwrap(result["plans"] as? [[String: Any]])
        XCTAssertEqual(plans.count, 3)
        XCTAssertGreaterThan(result["too_large"] as? Int ?? 0, 0, "some layouts of 172B must not fit in 80 GB")
        let speeds = plans.compactMap { $0["tokens_per_s"] as? Double }
        XCTAssertEqual(speeds, speeds.sorted(by: >))
        for p in plans {
            XCTAssertEqual(p["fits"] as? Bool, true)
            XCTAssertLessThanOrEqual(p["peak_memory_bytes_per_rank"] as? Int ?? .max, 80_000_000_000)
        }
    }

    /// Bad numbers and a profile file without measurements are refused by name, never a crash.
    func testMistakesAreRefusedNamingThem() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let broken = dir + "/broken.json"
        let h100 = try plan(["--hardware", "h100"] + tiny.flatMap { ["--set", $0] })
        XCTAssertEqual(h100["hardware"] as? String, "h100")
        let cases: [([String], String)] = [
            (
                [
                    "plan", "--search", "--model", "tiny", "--hardware", "h100", "--nodes", "0", "--global-batch", "8",
                    "--seq", "64",
                ], "--nodes must be at least 1"
            ),
            (["plan", "--hardware", "h100", "--tokens=-1"], "--tokens must be a positive number"),
            (["plan", "--hardware", broken], "not a hardware profile"),
        ]
        try Data(#"{"name": "x"}"#.utf8).write(to: URL(fileURLWithPath: broken))
        for (args, message) in cases {
            let r = try KumoProcess.run(args + tiny.flatMap { ["--set", $0] })
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.err.contains(message), "\(args): \(r.err)")
            XCTAssertFalse(r.err.contains("Fatal error"), r.err)
        }
    }
}
