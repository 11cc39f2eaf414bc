import Foundation
import TOMLKit

/// A scalar, string-list or table-list value of a configuration key.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)
    case strings([String])
    /// A list of tables of scalars, such as `[data] sources`.
    case tables([[String: ConfigValue]])

    /// The value as TOML source text.
    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return "\(v)"
        case .bool(let v): return v ? "true" : "false"
        case .string(let v): return quoted(v)
        case .strings(let v): return "[" + v.map(quoted).joined(separator: ", ") + "]"
        case .tables(let v):
            let tables = v.map { table in
                "{" + table.keys.sorted().map { "\($0) = \(table[$0]!)" }.joined(separator: ", ") + "}"
            }
            return "[" + tables.joined(separator: ", ") + "]"
        }
    }

    /// Converts a TOML value; nil for kinds a configuration never holds (tables, dates).
    init?(_ value: TOMLValueConvertible) {
        switch value.type {
        case .int: self = .int(value.int!)
        case .double: self = .double(value.double!)
        case .bool: self = .bool(value.bool!)
        case .string: self = .string(value.string!)
        case .array:
            let array = value.array!
            if !array.isEmpty, array.allSatisfy({ $0.table != nil }) {
                var tables: [[String: ConfigValue]] = []
                for table in array.map({ $0.table! }) {
                    var entries: [String: ConfigValue] = [:]
                    for key in table.keys {
                        guard let item = table[key].flatMap(ConfigValue.init), !item.isList else { return nil }
                        entries[key] = item
                    }
                    tables.append(entries)
                }
                self = .tables(tables)
                return
            }
            let items = array.map { $0.string }
            guard items.allSatisfy({ $0 != nil }) else { return nil }
            self = .strings(items.map { $0! })
        default: return nil
        }
    }

    /// Whether the value is a list (of strings or tables).
    var isList: Bool {
        switch self {
        case .strings, .tables: return true
        default: return false
        }
    }

    /// Parses the right-hand side of `--set key=value` as TOML, else as a bare string.
    static func parse(_ text: String) -> ConfigValue {
        if let table = try? TOMLTable(string: "v = " + text), let v = table["v"], let value = ConfigValue(v) {
            return value
        }
        return .string(text)
    }
}

private func quoted(_ s: String) -> String {
    var out = "\""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if ch.value < 0x20 { out += String(format: "\\u%04X", ch.value) } else { out.unicodeScalars.append(ch) }
        }
    }
    return out + "\""
}
