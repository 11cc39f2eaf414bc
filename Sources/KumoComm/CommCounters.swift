import Foundation

/// Cumulative calls, bytes and seconds of one operation kind of one group.
public struct CommTotals: Sendable, Equatable {
    public var calls = 0
    public var bytes = 0
    /// Seconds this rank spent inside the operation's calls and waits.
    public var seconds = 0.0
}

/// Per-operation totals of a communicator group, reported in metrics.jsonl as
/// `comm.<group>.<op>.calls|bytes|seconds`.
public final class CommCounters {
    /// The group's name in the metric keys.
    public let group: String
    public private(set) var totals: [String: CommTotals] = [:]

    /// Empty counters for `group`.
    public init(group: String) { self.group = group }

    /// Counts one call of `op` moving `bytes` (this rank's contribution).
    func count(_ op: String, bytes: Int) {
        totals[op, default: CommTotals()].calls += 1
        totals[op, default: CommTotals()].bytes += bytes
    }

    /// Adds time spent blocked in `op`.
    func time(_ op: String, _ seconds: Double) {
        totals[op, default: CommTotals()].seconds += seconds
    }

    /// The metric keys and values, sorted by key.
    public var metrics: [(key: String, value: Double)] {
        totals.keys.sorted().flatMap { op -> [(key: String, value: Double)] in
            let t = totals[op]!
            let prefix = "comm.\(group).\(op)."
            return [
                (prefix + "bytes", Double(t.bytes)), (prefix + "calls", Double(t.calls)),
                (prefix + "seconds", t.seconds),
            ]
        }
    }
}

/// The monotonic clock of communication timings.
enum CommClock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
