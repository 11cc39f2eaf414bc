import Foundation

/// The page of one run (`/runs/N`: its summary, charts, evaluations, checkpoints and config) and of
/// a comparison (`/compare?runs=1,2`: the runs, the config keys that differ, the charts overlaid).
enum RunPages {
    /// Run `detail`'s page; `lines` is the number of metrics lines shown (where live updates go on).
    static func run(_ detail: RunDetail, _ run: ChartedRun, lines: Int, query: DashboardQuery) -> String {
        let s = detail.summary
        let host = "host \(escapeXML(s.host))" + (detail.pid.map { ", pid \($0)" } ?? "")
        let ended = s.endedAt.map { ", ended \(DashboardHTML.time($0)) UTC" } ?? ""
        let mfu = DashboardHTML.cell(s.mfu.map { $0 * 100 }, "%.1f")
        let facts: [String] = [
            "experiment <b>\(escapeXML(s.experiment))</b>", "directory \(escapeXML(s.runDir))", host,
            "started \(DashboardHTML.time(s.startedAt)) UTC" + ended,
            "step \(s.steps) of \(s.totalSteps), \(ValueFormat.plain.string(Double(s.tokens))) tokens",
            "loss last \(DashboardHTML.cell(s.lastLoss)), min \(DashboardHTML.cell(s.minLoss))",
            "\(DashboardHTML.cell(s.tokensPerS, "%.0f")) tokens/s, MFU \(mfu)%",
            "layout " + s.layout.keys.sorted().map { "\($0) \(s.layout[$0]!)" }.joined(separator: ", "),
        ]
        let evals: [String] = detail.evals.map { e in
            let value = DashboardHTML.cell(e.value, "%.6g")
            return "<tr><td>\(e.step)</td><td class=\"text\">\(escapeXML(e.name))</td><td>\(value)</td></tr>"
        }
        let checkpoints: [String] = detail.checkpoints.map { "<li>step \($0.step): \(escapeXML($0.path))</li>" }
        var body: [String] = [
            "<h1>#\(s.number) \(escapeXML(s.name)) \(DashboardHTML.status(s.status))</h1>",
            detail.error.map { "<p><b>error:</b> \(escapeXML($0))</p>" } ?? "",
            "<p>" + facts.joined(separator: " · ") + "</p>", controls(query),
            charts([run], chartPath: "/runs/\(s.number)/chart", query: query),
        ]
        if !evals.isEmpty {
            body.append(
                "<h2>evaluations</h2><table><tr><th>step</th><th class=\"text\">score</th><th>value</th></tr>"
                    + evals.joined() + "</table>")
        }
        if !checkpoints.isEmpty { body.append("<h2>checkpoints</h2><ul>" + checkpoints.joined() + "</ul>") }
        body.append("<details><summary>config.toml</summary><pre>\(escapeXML(detail.config))</pre></details>")
        return DashboardHTML.page(
            "#\(s.number) \(s.name)", body.joined(separator: "\n"), live: s.status == .running ? [s.number: lines] : [:]
        )
    }

    /// The comparison of `details` (in the order asked); `lines` maps each run to its metrics lines shown.
    static func compare(_ details: [RunDetail], _ runs: [ChartedRun], lines: [Int: Int], query: DashboardQuery)
        -> String
    {
        let rows = details.enumerated().map { i, d -> String in
            let s = d.summary
            let color = DashboardCharts.palette[i % DashboardCharts.palette.count]
            return #"<tr><td><span class="swatch" style="background:\#(color)"></span></td><td>\#(s.number)</td>"#
                + #"<td class="text">\#(RunTable.runLink(s))</td><td class="text">\#(escapeXML(s.experiment))</td>"#
                + "<td class=\"text\">\(DashboardHTML.status(s.status))</td><td>\(s.steps)/\(s.totalSteps)</td>"
                + "<td>\(DashboardHTML.cell(s.lastLoss))</td><td>\(DashboardHTML.cell(s.minLoss))</td></tr>"
        }
        let keys = Set(details.flatMap(\.configValues.keys)).sorted().filter { key in
            Set(details.map { $0.configValues[key] }).count > 1
        }
        let diff = keys.map { key -> String in
            "<tr><td class=\"text\">\(escapeXML(key))</td>"
                + details.map { "<td>\(escapeXML($0.configValues[key] ?? "-"))</td>" }.joined() + "</tr>"
        }
        let numbers = details.map { "#\($0.summary.number)" }
        let body: String =
            "<h1>compare " + numbers.joined(separator: ", ") + "</h1>"
            + "<table><tr><th></th><th>#</th><th class=\"text\">name</th><th class=\"text\">experiment</th>"
            + "<th class=\"text\">status</th><th>steps</th><th>last loss</th><th>min loss</th></tr>"
            + rows.joined() + "</table>"
            + (diff.isEmpty
                ? "<p>the configs are the same</p>"
                : "<h2>config differences</h2><table><tr><th class=\"text\">key</th>"
                    + numbers.map { "<th>\($0)</th>" }.joined() + "</tr>" + diff.joined() + "</table>")
            + controls(query) + charts(runs, chartPath: "/compare/chart", query: query)
        let live = lines.filter { n, _ in details.contains { $0.summary.number == n && $0.summary.status == .running } }
        return DashboardHTML.page("compare " + numbers.joined(separator: ", "), body, live: live)
    }

    /// The form that sets the x axis, the smoothing and the log scale (keeping the other parameters).
    static func controls(_ query: DashboardQuery) -> String {
        let options = query.chartOptions
        let axes = XAxis.allCases.map { x -> String in
            #"<option value="\#(x.rawValue)"\#(x == options.x ? " selected" : "")>\#(x.label)</option>"#
        }
        let kept = query.pairs.filter { !["x", "smoothing", "log"].contains($0.key) }.map { pair -> String in
            #"<input type="hidden" name="\#(escapeXML(pair.key))" value="\#(escapeXML(pair.value))">"#
        }
        return #"<form class="filters" method="get">"# + kept.joined()
            + #"<label>x axis <select name="x">\#(axes.joined())</select></label>"#
            + #"<label>smoothing <input name="smoothing" type="number" min="0" max="0.99" step="0.05" "#
            + #"value="\#(options.smoothing)"></label>"#
            + #"<label><input type="checkbox" name="log" value="1"\#(options.logY ? " checked" : "")> log y</label>"#
            + #"<button type="submit">apply</button></form>"#
    }

    /// Every chart of `runs`, inline, each with a link to its SVG file (`chartPath/<id>.svg?...`) and a
    /// PNG download.
    static func charts(_ runs: [ChartedRun], chartPath: String, query: DashboardQuery) -> String {
        let options = query.chartOptions
        let parameters = query.setting(DashboardQuery.parameters(options))
        let figures = DashboardCharts.ids(runs).compactMap { id -> String? in
            guard let chart = DashboardCharts.chart(id, runs: runs, options: options) else { return nil }
            let source = escapeXML(chartPath + "/" + DashboardQuery.encode(id) + ".svg" + parameters)
            let name = escapeXML(runs.map { "run\($0.summary.number)" }.joined(separator: "-") + "-" + id)
            return #"<figure data-name="\#(name)">"#
                + ChartSVG.render(chart)
                + #"<figcaption><a href="\#(source)" download="\#(name).svg">SVG</a>"#
                + #"<button type="button" onclick="savePNG(this)">PNG</button></figcaption></figure>"#
        }
        return #"<div class="charts">"# + figures.joined(separator: "\n") + "</div>"
    }
}
