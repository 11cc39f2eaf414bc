import Foundation

/// A URL's query parameters as a browser's HTML form sends them (`+` for a space, percent-encoded
/// bytes), in order, and the dashboard's options read from them.
public struct DashboardQuery: Sendable {
    public let pairs: [(key: String, value: String)]

    /// The parameters of `query` (the part after `?`, without it).
    public init(_ query: String?) {
        pairs = (query ?? "").split(separator: "&").map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// The last non-empty value of `key`, if any.
    public subscript(key: String) -> String? {
        pairs.last { $0.key == key && !$0.value.isEmpty }?.value
    }

    /// The query with `changes` applied (a nil value removes the key), as `?a=1&b=2` ("" when empty).
    public func setting(_ changes: [String: String?]) -> String {
        var kept = pairs.filter { changes[$0.key] == nil }
        for key in changes.keys.sorted() {
            if let value = changes[key] ?? nil { kept.append((key, value)) }
        }
        guard !kept.isEmpty else { return "" }
        return "?" + kept.map { Self.encode($0.key) + "=" + Self.encode($0.value) }.joined(separator: "&")
    }

    /// The run numbers of `runs=1,2,3` (and of repeated `runs=`, as a form of checkboxes sends them).
    public var runNumbers: [Int] {
        pairs.filter { $0.key == "runs" }.flatMap { $0.value.split(separator: ",") }.compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
    }

    /// `x=step|tokens|time`, `smoothing=0.6` (0 to 0.999) and `log=1`; the defaults for what is missing
    /// or invalid.
    public var chartOptions: ChartOptions {
        var options = ChartOptions()
        if let x = self["x"].flatMap(XAxis.init(rawValue:)) { options.x = x }
        if let s = self["smoothing"].flatMap(Double.init), s.isFinite { options.smoothing = min(max(s, 0), 0.999) }
        options.logY = ["1", "true", "on"].contains(self["log"] ?? "")
        return options
    }

    /// The query parameters that carry `options` (for links to charts and between pages).
    public static func parameters(_ options: ChartOptions) -> [String: String?] {
        ["x": options.x.rawValue, "smoothing": String(options.smoothing), "log": options.logY ? "1" : nil]
    }

    /// `text` percent-encoded for a query value.
    static func encode(_ text: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~,")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
