import Foundation

/// What the charts of a page show: the x axis, the smoothing weight of noisy series (0: none), a log
/// y axis, and how many points a series keeps at most.
public struct ChartOptions: Equatable, Sendable {
    public var x: XAxis
    public var smoothing: Double
    public var logY: Bool
    public var maxPoints: Int

    public init(x: XAxis = .step, smoothing: Double = 0.6, logY: Bool = false, maxPoints: Int = 1000) {
        self.x = x
        self.smoothing = smoothing
        self.logY = logY
        self.maxPoints = maxPoints
    }
}

/// A run and its metrics, as the charts draw it.
public struct ChartedRun: Sendable {
    public var summary: RunSummary
    public var metrics: RunMetrics

    public init(summary: RunSummary, metrics: RunMetrics) {
        self.summary = summary
        self.metrics = metrics
    }
}

/// The charts of a run page or a comparison: loss, learning rate, gradient norm, throughput, MFU,
/// memory and each evaluation score, one colour per run (per key within one run's memory chart).
public enum DashboardCharts {
    /// Tableau's ten colours.
    static let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]
    /// Dash patterns that tell the keys of one run apart when several runs share a chart.
    static let dashes = ["", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 1 2", "1 5"]
    /// The charts of single training keys: id (the metrics key), title, and whether it is smoothed.
    static let trainingCharts: [(id: String, title: String, smoothed: Bool)] = [
        ("loss", "loss", true), ("lr", "learning rate", false), ("grad_norm", "gradient norm", true),
        ("tokens_per_s", "tokens/s", true), ("mfu", "MFU", true),
    ]
    /// The prefix of the memory keys and of the evaluation charts' ids.
    static let memoryPrefix = "memory."
    static let evalPrefix = "eval."

    /// The ids of the charts `runs` have data for (loss always), in page order.
    public static func ids(_ runs: [ChartedRun]) -> [String] {
        var ids = trainingCharts.map(\.id).filter { id in
            id == "loss" || runs.contains { !$0.metrics.points(id, x: .step).isEmpty }
        }
        if runs.contains(where: { !$0.metrics.trainKeys(prefix: memoryPrefix).isEmpty }) { ids.append("memory") }
        ids += Set(runs.flatMap(\.metrics.evalScores)).sorted().map { evalPrefix + $0 }
        return ids
    }

    /// Chart `id` (`loss`, `lr`, `grad_norm`, `tokens_per_s`, `mfu`, `memory`, `eval.<score>`) of `runs`;
    /// nil for an id that names no chart.
    public static func chart(_ id: String, runs: [ChartedRun], options: ChartOptions) -> Chart? {
        guard let spec = spec(id, runs: runs) else { return nil }
        let smoothed = spec.smoothed && options.smoothing > 0
        var series: [ChartSeries] = []
        for (i, run) in runs.enumerated() {
            for (j, key) in spec.keys.enumerated() {
                let style = ChartSeries(
                    label: "#\(run.summary.number) \(run.summary.name)" + (spec.keys.count > 1 ? " \(short(key))" : ""),
                    color: palette[(runs.count > 1 ? i : j) % palette.count],
                    points: run.metrics.points(key, evaluation: spec.evaluation, x: options.x),
                    dash: runs.count > 1 ? dashes[j % dashes.count] : "")
                series += lines(style, smoothed: smoothed, options: options)
            }
        }
        return Chart(
            id: id, title: spec.title + (smoothed ? String(format: " (smoothing %.2g)", options.smoothing) : ""),
            xLabel: options.x.label, series: series, legend: legend(runs, keys: spec.keys),
            format: id == "memory" ? .bytes : .plain, logY: options.logY)
    }

    /// The metrics keys chart `id` draws, its title, whether it is smoothed and whether its keys are
    /// evaluation scores; nil for an id that names no chart.
    static func spec(_ id: String, runs: [ChartedRun]) -> (
        keys: [String], title: String, smoothed: Bool, evaluation: Bool
    )? {
        if let chart = trainingCharts.first(where: { $0.id == id }) {
            return ([id], chart.title, chart.smoothed, false)
        }
        if id == "memory" {
            return (Set(runs.flatMap { $0.metrics.trainKeys(prefix: memoryPrefix) }).sorted(), "memory", false, false)
        }
        guard id.hasPrefix(evalPrefix), id.count > evalPrefix.count else { return nil }
        let score = String(id.dropFirst(evalPrefix.count))
        return ([score], score, false, true)
    }

    /// The legend: each run's colour when there are several runs; each key's colour (one run) or dash
    /// (several runs) when there are several keys.
    static func legend(_ runs: [ChartedRun], keys: [String]) -> [ChartSeries] {
        let several = runs.count > 1
        let byRun = runs.enumerated().map { i, run in
            ChartSeries(
                label: "#\(run.summary.number) \(run.summary.name)", color: palette[i % palette.count], points: [])
        }
        let byKey = keys.enumerated().map { j, key in
            ChartSeries(
                label: short(key), color: several ? "gray" : palette[j % palette.count], points: [],
                dash: several ? dashes[j % dashes.count] : "")
        }
        return (several ? byRun : []) + (keys.count > 1 ? byKey : [])
    }

    /// `key` without the `memory.` prefix.
    static func short(_ key: String) -> String {
        key.hasPrefix(memoryPrefix) ? String(key.dropFirst(memoryPrefix.count)) : key
    }

    /// `raw` downsampled; when `smoothed`, as a faint line under its de-biased moving average.
    static func lines(_ raw: ChartSeries, smoothed: Bool, options: ChartOptions) -> [ChartSeries] {
        var line = raw
        line.points = Downsampling.minMax(raw.points, maxPoints: options.maxPoints)
        guard smoothed else { return [line] }
        var faint = line
        faint.faint = true
        line.points = Downsampling.minMax(
            Smoothing.debiasedEMA(raw.points, weight: options.smoothing), maxPoints: options.maxPoints)
        return [faint, line]
    }
}
