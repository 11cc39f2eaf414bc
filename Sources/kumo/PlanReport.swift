import Foundation
import KumoCore
import KumoPlan

/// A plan printed for people or as JSON.
struct PlanReport {
    let plan: Plan
    /// Tokens to train, for the days it takes.
    let tokens: Double?

    /// Days to train `tokens` at the predicted speed, and at the ranks' peak.
    private var days: (predicted: Double, atPeak: Double)? {
        tokens.map { d in
            let peak =
                Double(plan.layout.ranks) * plan.hardware.peakGFLOPs(plan.layout.precision, threads: plan.threads) * 1e9
            return (d / plan.tokensPerSecond / 86400, d * plan.flopsPerToken / peak / 86400)
        }
    }

    var object: [String: Any] {
        var o = plan.json
        if let days {
            o["train_tokens"] = tokens
            o["train_days"] = days.predicted
            o["train_days_at_peak"] = days.atPeak
        }
        return o
    }

    /// One line: the layout, its speed, memory and bottleneck.
    var summary: String {
        let l = plan.layout
        let p = l.parallel
        return String(
            format: "tp %d × pp %d × dp %d%@, ZeRO-%d%@%@, micro-batch %d, recompute %@, %@: %.0f tok/s, step %.2f s, "
                + "MFU %.1f%%, %.1f GiB per rank, bound by %@",
            p.tensor, p.pipeline, l.dataParallel, p.expert > 1 ? " (experts over \(p.expert))" : "",
            p.zeroStage.rawValue,
            p.shardGroupSize > 0 ? " in groups of \(p.shardGroupSize)" : "", p.sequence ? ", sequence parallel" : "",
            l.batch.micro, l.recompute.rawValue, l.precision.rawValue, plan.tokensPerSecond, plan.stepSeconds,
            100 * plan.mfu, Double(plan.peakMemoryBytesPerRank) / Double(1 << 30), plan.time.bottleneck)
            + (days.map { String(format: "; %.1f days (%.1f at peak)", $0.predicted, $0.atPeak) } ?? "")
    }

    func print(json: Bool) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            Swift.print(String(decoding: data, as: UTF8.self))
            return
        }
        Swift.print(summary)
        Swift.print("hardware: \(plan.hardware.name) (\(plan.hardware.source))")
        for m in plan.memory.stages {
            let parts = m.parts.filter { $0.1 > 0 }.map { "\($0.0) \(mib($0.1))" }.joined(separator: ", ")
            Swift.print("memory, stage \(m.stage): \(mib(m.total)) = \(parts)")
        }
        Swift.print(
            "fits: \(plan.fits) (peak \(mib(plan.peakMemoryBytesPerRank)) of \(mib(plan.availableBytesPerRank)) per rank)"
        )
        for g in plan.comm.groups {
            Swift.print(
                "comm \(g.group) (\(g.link.rawValue)): \(mib(Int(g.bytesPerStep))) per step"
                    + (g.interHostBytesPerStep > 0 ? ", \(mib(Int(g.interHostBytesPerStep))) across hosts" : "")
                    + (g.overlapped ? ", overlapped with backward" : ""))
        }
        let parts = plan.time.parts.map { String(format: "%@ %.3f", $0.0, $0.1) }.joined(separator: ", ")
        Swift.print(String(format: "step %.3f s = %@ (s)", plan.stepSeconds, parts))
    }

    private func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}
