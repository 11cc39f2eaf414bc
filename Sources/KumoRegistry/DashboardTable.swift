import Foundation

/// The run table of the dashboard's front page: runs filtered (`experiment=`, `status=`, `q=` text),
/// sorted by any column (`sort=<column>&desc=1`; the headers link there) and grouped by experiment
/// or by a config key (`group=experiment`, `group=model.hidden_size`), with checkboxes to compare runs.
struct RunTable {
    /// A column: its key in `sort=`, its header (HTML), its value for sorting and its cell (HTML).
    struct Column {
        let key: String
        let title: String
        let value: (RunSummary) -> SortValue
        let text: (RunSummary) -> String
        var left = false
    }

    /// What a column sorts by; `none` sorts last in either direction.
    enum SortValue: Comparable {
        case number(Double)
        case text(String)
        case none
    }

    let runs: [RunSummary]
    /// Each run's flattened config (only needed to group by a config key).
    let configValues: [Int: [String: String]]
    let query: DashboardQuery

    /// The columns: #, name, experiment, status, steps, losses, tokens, tokens/s, MFU, each evaluation
    /// score found, started.
    var columns: [Column] {
        func number(_ f: @escaping (RunSummary) -> Double?) -> (RunSummary) -> SortValue {
            { f($0).map(SortValue.number) ?? .none }
        }
        let scores = Set(runs.flatMap(\.eval.keys)).sorted()
        return [
            Column(key: "number", title: "#", value: number { Double($0.number) }) {
                #"<a href="/runs/\#($0.number)">\#($0.number)</a>"#
            },
            Column(key: "name", title: "name", value: { .text($0.name) }, text: { Self.runLink($0) }, left: true),
            Column(
                key: "experiment", title: "experiment", value: { .text($0.experiment) },
                text: { escapeXML($0.experiment) }, left: true),
            Column(
                key: "status", title: "status", value: { .text($0.status.rawValue) },
                text: { DashboardHTML.status($0.status) }, left: true),
            Column(key: "steps", title: "steps", value: number { Double($0.steps) }) { "\($0.steps)/\($0.totalSteps)" },
            Column(key: "last_loss", title: "last loss", value: number(\.lastLoss)) { DashboardHTML.cell($0.lastLoss) },
            Column(key: "min_loss", title: "min loss", value: number(\.minLoss)) { DashboardHTML.cell($0.minLoss) },
            Column(key: "tokens", title: "tokens", value: number { Double($0.tokens) }) {
                ValueFormat.plain.string(Double($0.tokens))
            },
            Column(key: "tokens_per_s", title: "tokens/s", value: number(\.tokensPerS)) {
                DashboardHTML.cell($0.tokensPerS, "%.0f")
            },
            Column(key: "mfu", title: "MFU", value: number(\.mfu)) {
                DashboardHTML.cell($0.mfu.map { $0 * 100 }, "%.1f%%")
            },
        ]
            + scores.map { name in
                Column(
                    key: "eval." + name, title: escapeXML(name).replacingOccurrences(of: ".", with: ".<wbr>"),
                    value: number { $0.eval[name] }
                ) {
                    DashboardHTML.cell($0.eval[name], "%.4g")
                }
            }
            + [
                Column(
                    key: "started_at", title: "started (UTC)", value: number { $0.startedAt.timeIntervalSince1970 },
                    text: { DashboardHTML.time($0.startedAt) })
            ]
    }

    /// The page body: the filter form and the table.
    func html() -> String {
        let columns = self.columns
        let sortKey = query["sort"] ?? "number"
        let descending = query["desc"] == "1"
        let sortColumn = columns.first { $0.key == sortKey } ?? columns[0]
        let shown = filtered().sorted { a, b in
            let (x, y) = (sortColumn.value(a), sortColumn.value(b))
            if x == y { return a.number < b.number }
            if x == .none || y == .none { return y == .none }
            return descending ? y < x : x < y
        }
        let header = columns.map { c -> String in
            let desc = c.key == sortKey && !descending
            let arrow = c.key == sortKey ? (descending ? " ▼" : " ▲") : ""
            let link = query.setting(["sort": c.key, "desc": desc ? "1" : nil])
            return #"<th class="\#(c.left ? "text" : "")"><a href="/\#(escapeXML(link))">\#(c.title)\#(arrow)</a></th>"#
        }.joined()
        var rows: [String] = []
        for (group, members) in groups(shown) {
            if let group {
                let numbers = members.map { String($0.number) }.joined(separator: ",")
                rows.append(
                    #"<tr class="group"><td colspan="\#(columns.count + 1)">\#(escapeXML(group)) "#
                        + #"(\#(members.count) runs) <a href="/compare?runs=\#(numbers)">compare</a></td></tr>"#)
            }
            rows += members.map { r -> String in
                #"<tr><td><input type="checkbox" name="runs" value="\#(r.number)"></td>"#
                    + columns.map { c -> String in #"<td class="\#(c.left ? "text" : "")">\#(c.text(r))</td>"# }
                    .joined() + "</tr>"
            }
        }
        return filterForm() + #"<form action="/compare" method="get"><table><thead><tr><th></th>\#(header)</tr>"#
            + "</thead><tbody>\n\(rows.joined(separator: "\n"))\n</tbody></table>"
            + #"<p><button type="submit">compare selected runs</button> \#(shown.count) of \#(runs.count) runs</p>"#
            + "</form>"
    }

    /// The runs the `experiment=`, `status=` and `q=` (any of name, experiment, status, host, directory) keep.
    func filtered() -> [RunSummary] {
        let text = query["q"]?.lowercased()
        return runs.filter { r in
            (query["experiment"].map { $0 == r.experiment } ?? true)
                && (query["status"].map { $0 == r.status.rawValue } ?? true)
                && (text.map { t in
                    [r.name, r.experiment, r.status.rawValue, r.host, r.runDir].contains { $0.lowercased().contains(t) }
                } ?? true)
        }
    }

    /// `runs` in groups of equal `group=` value (numbers in numeric order), or one unnamed group.
    func groups(_ runs: [RunSummary]) -> [(String?, [RunSummary])] {
        guard let key = query["group"] else { return [(nil, runs)] }
        let value: (RunSummary) -> String =
            key == "experiment" ? { $0.experiment } : { configValues[$0.number]?[key] ?? "(not set)" }
        let grouped = Dictionary(grouping: runs, by: value)
        let names = grouped.keys.sorted { a, b in
            if let x = Double(a), let y = Double(b) { return x < y }
            return a < b
        }
        return names.map { ("\(key) = \($0)", grouped[$0]!) }
    }

    /// The filter form: experiment, status, text and grouping, sent back to `/`.
    func filterForm() -> String {
        let experiments = Set(runs.map(\.experiment)).sorted()
        func select(_ name: String, _ values: [String]) -> String {
            let options = ([""] + values).map { v -> String in
                #"<option value="\#(escapeXML(v))"\#(query[name] == v ? " selected" : "")>"#
                    + (v.isEmpty ? "all" : escapeXML(v)) + "</option>"
            }
            return #"<label>\#(name) <select name="\#(name)">\#(options.joined())</select></label>"#
        }
        func input(_ name: String, _ label: String, _ placeholder: String) -> String {
            #"<label>\#(label) <input name="\#(name)" value="\#(escapeXML(query[name] ?? ""))" "#
                + #"placeholder="\#(placeholder)"></label>"#
        }
        return #"<form class="filters" method="get" action="/">"# + select("experiment", experiments)
            + select("status", RunStatus.allCases.map(\.rawValue)) + input("q", "text", "name, host, directory")
            + input("group", "group by", "experiment or model.hidden_size")
            + ["sort", "desc"].compactMap { key in
                query[key].map { value -> String in
                    #"<input type="hidden" name="\#(key)" value="\#(escapeXML(value))">"#
                }
            }.joined()
            + #"<button type="submit">apply</button></form>"#
    }

    /// A link to a run's page, showing its name.
    static func runLink(_ r: RunSummary) -> String {
        #"<a href="/runs/\#(r.number)">\#(escapeXML(r.name))</a>"#
    }
}
