import Foundation
import XCTest

@testable import KumoRegistry

/// The dashboard's chart pieces: smoothing, downsampling, axes and the SVG drawn.
final class DashboardChartTests: XCTestCase {
    func testDebiasedEMAMatchesHandComputedValues() {
        // a = 0.6: ema 0.4, 1.04, 1.824; divided by 1 - 0.6^t = 0.4, 0.64, 0.784.
        let points = [1.0, 2, 3].enumerated().map { ChartPoint(x: Double($0), y: $1) }
        let smoothed = Smoothing.debiasedEMA(points, weight: 0.6).map(\.y)
        for (got, want) in zip(smoothed, [1.0, 1.625, 1.824 / 0.784]) {
            XCTAssertEqual(got, want, accuracy: 1e-12, "smoothed \(smoothed)")
        }
        XCTAssertEqual(Smoothing.debiasedEMA(points, weight: 0), points, "weight 0 leaves the series as it is")
    }

    func testMinMaxDownsamplingKeepsSpikesAndOrder() {
        var points = (0..<10_000).map { ChartPoint(x: Double($0), y: 1 + 0.001 * Double($0 % 7)) }
        points[4321].y = 100
        points[777].y = -50
        let kept = Downsampling.minMax(points, maxPoints: 1000)
        XCTAssertLessThanOrEqual(kept.count, 1000)
        XCTAssertGreaterThan(kept.count, 900)
        XCTAssertTrue(kept.contains(ChartPoint(x: 4321, y: 100)), "the upward spike is kept")
        XCTAssertTrue(kept.contains(ChartPoint(x: 777, y: -50)), "the downward spike is kept")
        XCTAssertEqual(kept.map(\.x), kept.map(\.x).sorted(), "points stay in order")
        XCTAssertEqual(Downsampling.minMax(Array(points.prefix(500)), maxPoints: 1000).count, 500)
    }

    func testLogScaleTicksArePowersOfTen() {
        let scale = AxisScale(values: [0.01, 0.5, 100, -3, 0], log: true, extend: true)
        XCTAssertEqual(scale.ticks, [0.01, 0.1, 1, 10, 100], "ticks \(scale.ticks)")
        XCTAssertNil(scale.fraction(0), "a log scale cannot place 0")
        XCTAssertEqual(scale.fraction(1)!, 0.5, accuracy: 1e-9, "1 lies halfway between 0.01 and 100")
    }

    func testLinearScaleExtendsToNiceTicks() {
        let scale = AxisScale(values: [0.3, 9.2], log: false, extend: true)
        XCTAssertEqual(scale.ticks, [0, 2, 4, 6, 8, 10])
        XCTAssertEqual(scale.low, 0)
        XCTAssertEqual(scale.high, 10)
    }

    func testByteTicksAreMultiplesOfMiB() {
        let scale = AxisScale(values: [0, 380 * 1024 * 1024], log: false, extend: true, format: .bytes)
        XCTAssertEqual(scale.ticks.map(ValueFormat.bytes.string), ["0", "100 MiB", "200 MiB", "300 MiB", "400 MiB"])
    }

    func testValueFormatsUseUnits() {
        XCTAssertEqual(ValueFormat.plain.string(1_500_000), "1.5M")
        XCTAssertEqual(ValueFormat.plain.string(0.25), "0.25")
        XCTAssertEqual(ValueFormat.bytes.string(3 * 1024 * 1024 * 1024), "3 GiB")
    }

    func testSVGDrawsLogAxisTicksAndTheSeries() throws {
        let points = [0.01, 1, 100].enumerated().map { ChartPoint(x: Double($0) * 10, y: $1) }
        let chart = Chart(
            id: "loss", title: "loss", xLabel: "step",
            series: [ChartSeries(label: "#1 a", color: "#1f77b4", points: points)], format: .plain, logY: true)
        let svg = ChartSVG.render(chart, width: 560, height: 300)
        XCTAssertTrue(svg.hasPrefix(#"<svg xmlns="http://www.w3.org/2000/svg" width="560" height="300""#))
        XCTAssertTrue(svg.hasSuffix("</svg>"))
        for label in ["0.01", "0.1", ">1<", ">10<", "100", "log scale", ">step<", ">loss<"] {
            XCTAssertTrue(svg.contains(label), "\(label) missing from \(svg)")
        }
        let line = try XCTUnwrap(svg.components(separatedBy: #"points=""#).dropFirst().first?.prefix { $0 != "\"" })
        let ys = line.split(separator: " ").map { Double($0.split(separator: ",")[1])! }
        // The plot spans y 28...262; 0.01, 1 and 100 sit at its bottom, middle and top (2% padding each end).
        XCTAssertEqual(ys[1], (28 + 262) / 2, accuracy: 0.1, "points \(line)")
        XCTAssertEqual(ys[0] - ys[1], ys[1] - ys[2], accuracy: 0.1, "equal ratios, equal distances: \(line)")
        XCTAssertGreaterThan(ys[0], ys[2], "larger values are drawn higher")
    }

    func testSVGOfNoDataSaysSo() {
        let chart = Chart(id: "mfu", title: "MFU", xLabel: "step", series: [], format: .plain, logY: false)
        XCTAssertTrue(ChartSVG.render(chart).contains("no data yet"))
    }

    func testChartsOfRunsSmoothLossAndOverlayRuns() throws {
        let runs = [1, 2].map { n in
            let lines =
                (1...50).map { #"{"step":\#($0),"loss":\#(5.0 - Double($0) / 20),"memory.peak_rss_bytes":1e9}"# }
                + [#"{"step":50,"eval_s":0.5,"val_loss":4.1}"#]
            let summary = RunSummary.sample(number: n, steps: 50, tokens: 50 * 128)
            return ChartedRun(summary: summary, metrics: RunMetrics(lines: lines, summary: summary))
        }
        XCTAssertEqual(DashboardCharts.ids(runs), ["loss", "memory", "eval.val_loss"])
        let loss = try XCTUnwrap(DashboardCharts.chart("loss", runs: runs, options: ChartOptions(x: .tokens)))
        XCTAssertEqual(loss.series.map(\.faint), [true, false, true, false], "raw under smoothed, per run")
        XCTAssertEqual(Set(loss.series.map(\.color)).count, 2, "one colour per run")
        XCTAssertEqual(loss.legend.map(\.label), ["#1 run1", "#2 run2"])
        XCTAssertEqual(loss.series[1].points.last?.x, 50 * 128, "x in tokens: step × tokens per step")
        let eval = try XCTUnwrap(DashboardCharts.chart("eval.val_loss", runs: runs, options: ChartOptions()))
        XCTAssertEqual(eval.series.map(\.points), [[ChartPoint(x: 50, y: 4.1)], [ChartPoint(x: 50, y: 4.1)]])
        XCTAssertNil(DashboardCharts.chart("nonsense", runs: runs, options: ChartOptions()))
    }

    func testQueryDecodesFormsAndRunLists() {
        let query = DashboardQuery("q=big+model%21&runs=1,2&runs=5&x=time&smoothing=0.9&log=1")
        XCTAssertEqual(query["q"], "big model!")
        XCTAssertEqual(query.runNumbers, [1, 2, 5])
        XCTAssertEqual(query.chartOptions, ChartOptions(x: .time, smoothing: 0.9, logY: true))
        XCTAssertEqual(
            query.setting(["log": nil, "x": "step"]), "?q=big%20model%21&runs=1,2&runs=5&smoothing=0.9&x=step")
    }
}

extension RunSummary {
    /// A summary with the given number, steps and tokens; the rest placeholders.
    static func sample(number: Int, steps: Int, tokens: Int, status: RunStatus = .completed) -> RunSummary {
        RunSummary(
            number: number, name: "run\(number)", experiment: "e", status: status, runDir: "/tmp/run\(number)",
            steps: steps, totalSteps: steps, lastLoss: nil, minLoss: nil, tokens: tokens, tokensPerS: nil, mfu: nil,
            eval: [:], startedAt: Date(timeIntervalSince1970: 0), endedAt: nil,
            heartbeatAt: Date(timeIntervalSince1970: 0), host: "h", configHash: "c", binaryHash: nil, layout: [:])
    }
}
