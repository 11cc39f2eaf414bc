import Foundation
import TOMLKit

/// A scalar or string-list value of a configuration key.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)
    case strings([String])

    /// The value as TOML source text.
    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return "\(v)"
        case .bool(let v): return v ? "true" : "false"
        case .string(let v): return quoted(v)
        case .strings(let v): return "[" + v.map(quoted).joined(separator: ", ") + "]"
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
            let items = value.array!.map { $0.string }
            guard items.allSatisfy({ $0 != nil }) else { return nil }
            self = .strings(items.map { $0! })
        default: return nil
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
