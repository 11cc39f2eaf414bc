import Foundation

/// A line of a chart.
public struct ChartSeries: Sendable {
    public var label: String
    /// A CSS colour.
    public var color: String
    public var points: [ChartPoint]
    /// A raw series drawn thin and pale under its smoothed line.
    public var faint = false
    /// An SVG `stroke-dasharray` ("" for a solid line).
    public var dash = ""

    public init(label: String, color: String, points: [ChartPoint], faint: Bool = false, dash: String = "") {
        self.label = label
        self.color = color
        self.points = points
        self.faint = faint
        self.dash = dash
    }
}

/// A chart of the dashboard: a title, an x axis and lines.
public struct Chart: Sendable {
    /// The chart's name in URLs (`loss`, `memory`, `eval.val_loss`).
    public var id: String
    public var title: String
    public var xLabel: String
    public var series: [ChartSeries]
    /// What the legend shows (a colour or dash and a label each); none for a single line.
    public var legend: [ChartSeries]
    public var format: ValueFormat
    public var logY: Bool

    public init(
        id: String, title: String, xLabel: String, series: [ChartSeries], legend: [ChartSeries] = [],
        format: ValueFormat, logY: Bool
    ) {
        self.id = id
        self.title = title
        self.xLabel = xLabel
        self.series = series
        self.legend = legend
        self.format = format
        self.logY = logY
    }
}

/// Draws a `Chart` as a standalone SVG document (white background, axes with ticks and grid lines,
/// the lines with their labels as tooltips, the legend under the title), so that it shows inline in a
/// page, opens on its own and converts to PNG unchanged.
public enum ChartSVG {
    /// The SVG of `chart`, `width` × `height` pixels.
    public static func render(_ chart: Chart, width: Int = 392, height: Int = 270) -> String {
        let legend = legendLayout(chart.legend, width: width)
        let frame = Frame(width: width, height: height, legendRows: legend.map { $0.row + 1 }.max() ?? 0)
        let all = chart.series.flatMap(\.points)
        let xScale = AxisScale(values: all.map(\.x), log: false, extend: false)
        let yScale = AxisScale(values: all.map(\.y), log: chart.logY, extend: true, format: chart.format)
        let clip = "clip-" + chart.id.map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
        var svg: [String] = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" "#
                + #"viewBox="0 0 \#(width) \#(height)" font-family="sans-serif" font-size="11">"#,
            #"<rect width="\#(width)" height="\#(height)" fill="white"/>"#,
            #"<text x="\#(frame.left)" y="17" font-size="13" font-weight="bold">\#(escapeXML(chart.title))</text>"#,
            #"<clipPath id="\#(clip)"><rect x="\#(frame.left)" y="\#(frame.top)" width="\#(frame.plotWidth)" "#
                + #"height="\#(frame.plotHeight)"/></clipPath>"#,
        ]
        if all.isEmpty {
            svg.append(
                #"<text x="\#(frame.left + frame.plotWidth / 2)" y="\#(frame.top + frame.plotHeight / 2)" "#
                    + #"text-anchor="middle" fill="gray">no data yet</text>"#)
        } else {
            svg += axes(frame, xScale, yScale, chart)
            svg.append(#"<g clip-path="url(#\#(clip))">"#)
            svg += chart.series.map { line($0, frame, xScale, yScale) }
            svg.append("</g>")
        }
        svg += legend.map(legendItem)
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    /// The plot area inside the margins (room for tick labels, the title and the legend).
    struct Frame {
        let width: Int
        let height: Int
        /// Rows of legend between the title and the plot.
        let legendRows: Int
        let left = 58
        var top: Int { 28 + 15 * legendRows }
        var right: Int { width - 14 }
        var bottom: Int { height - 38 }
        /// Where legend rows start.
        static let legendLeft = 12
        var plotWidth: Int { right - left }
        var plotHeight: Int { bottom - top }

        /// The pixel position of fractions along x and y (0 at the left and bottom).
        func point(_ fx: Double, _ fy: Double) -> (Double, Double) {
            (Double(left) + fx * Double(plotWidth), Double(bottom) - fy * Double(plotHeight))
        }
    }

    /// The frame, grid lines, tick labels and axis titles.
    private static func axes(_ frame: Frame, _ xScale: AxisScale, _ yScale: AxisScale, _ chart: Chart) -> [String] {
        var out: [String] = []
        for tick in yScale.ticks {
            guard let f = yScale.fraction(tick) else { continue }
            let y = frame.point(0, f).1
            out.append(
                #"<line x1="\#(frame.left)" x2="\#(frame.right)" y1="\#(fmt(y))" y2="\#(fmt(y))" stroke="rgb(228,228,228)"/>"#
            )
            out.append(
                #"<text x="\#(frame.left - 6)" y="\#(fmt(y + 4))" text-anchor="end" fill="rgb(68,68,68)">"#
                    + "\(escapeXML(chart.format.string(tick)))</text>")
        }
        for tick in xScale.ticks {
            guard let f = xScale.fraction(tick) else { continue }
            let x = frame.point(f, 0).0
            out.append(
                #"<line x1="\#(fmt(x))" x2="\#(fmt(x))" y1="\#(frame.top)" y2="\#(frame.bottom)" stroke="rgb(228,228,228)"/>"#
            )
            out.append(
                #"<text x="\#(fmt(x))" y="\#(frame.bottom + 15)" text-anchor="middle" fill="rgb(68,68,68)">"#
                    + "\(escapeXML(ValueFormat.plain.string(tick)))</text>")
        }
        out.append(
            #"<rect x="\#(frame.left)" y="\#(frame.top)" width="\#(frame.plotWidth)" height="\#(frame.plotHeight)" "#
                + #"fill="none" stroke="rgb(153,153,153)"/>"#)
        out.append(
            #"<text x="\#(frame.left + frame.plotWidth / 2)" y="\#(frame.height - 6)" text-anchor="middle" "#
                + #"fill="rgb(68,68,68)">\#(escapeXML(chart.xLabel))</text>"#)
        if chart.logY {
            out.append(#"<text x="\#(frame.right)" y="17" text-anchor="end" fill="gray">log scale</text>"#)
        }
        return out
    }

    /// One series as a polyline (with dots when it has few points, as evaluations do).
    private static func line(_ s: ChartSeries, _ frame: Frame, _ xScale: AxisScale, _ yScale: AxisScale) -> String {
        let pixels = s.points.compactMap { p -> (Double, Double)? in
            guard let fx = xScale.fraction(p.x), let fy = yScale.fraction(p.y) else { return nil }
            return frame.point(fx, fy)
        }
        let dash: String = s.dash.isEmpty ? "" : #" stroke-dasharray="\#(s.dash)""#
        let style: String = s.faint ? #"stroke-width="1" stroke-opacity="0.3""# : #"stroke-width="1.6""# + dash
        var out: String =
            #"<polyline fill="none" stroke="\#(s.color)" \#(style) stroke-linejoin="round" points=""#
            + pixels.map { "\(fmt($0.0)),\(fmt($0.1))" }.joined(separator: " ") + #""><title>"#
            + escapeXML(s.label) + "</title></polyline>"
        if !s.faint && pixels.count <= 20 {
            out += pixels.map { p -> String in
                #"<circle cx="\#(fmt(p.0))" cy="\#(fmt(p.1))" r="2.5" fill="\#(s.color)"/>"#
            }
            .joined()
        }
        return out
    }

    /// Where each legend entry goes: entries flow left to right under the title, in rows `width` wide.
    static func legendLayout(_ series: [ChartSeries], width: Int) -> [(series: ChartSeries, x: Int, row: Int)] {
        var (x, row) = (Frame.legendLeft, 0)
        return series.map { s in
            let entry = 30 + 6 * min(s.label.count, legendLabelLength) + 12
            if x > Frame.legendLeft && x + entry > width {
                (x, row) = (Frame.legendLeft, row + 1)
            }
            defer { x += entry }
            return (s, x, row)
        }
    }

    /// The most characters of a label the legend shows.
    static let legendLabelLength = 24

    /// A legend entry: a short line of the series' colour and dash, and its label.
    private static func legendItem(_ entry: (series: ChartSeries, x: Int, row: Int)) -> String {
        let (s, x) = (entry.series, entry.x)
        let y = 30 + 15 * entry.row
        let label = s.label.count > legendLabelLength ? s.label.prefix(legendLabelLength - 1) + "…" : s.label[...]
        return #"<line x1="\#(x)" x2="\#(x + 20)" y1="\#(y)" y2="\#(y)" stroke="\#(s.color)" stroke-width="2""#
            + (s.dash.isEmpty ? "" : #" stroke-dasharray="\#(s.dash)""#) + "/>"
            + #"<text x="\#(x + 25)" y="\#(y + 4)">\#(escapeXML(String(label)))</text>"#
    }

    private static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
}

/// `text` with the characters XML and HTML give a meaning (`& < > " '`) escaped.
public func escapeXML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
