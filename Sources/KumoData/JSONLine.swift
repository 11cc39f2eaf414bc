/// Reads one string field out of a JSON object given as UTF-8 bytes (a JSONL record), checking
/// that the whole record is well-formed JSON; a fast path for corpus reading that builds nothing
/// but the field's text.
enum JSONLine {
    /// What a record holds under the field asked for.
    enum Field: Equatable {
        /// The field's string value (the last one if the key repeats).
        case text(String)
        /// The record is an object without the field.
        case missing
        /// The field holds a number, object, array, boolean or null.
        case notString
        /// The record is valid JSON but not an object.
        case notObject
        /// The record is not valid JSON.
        case invalid
    }

    /// Nesting deeper than this is treated as invalid rather than recursed into.
    static let maxDepth = 256

    /// The value of field `name` in `bytes`, which must be valid UTF-8.
    static func field(_ name: String, in bytes: [UInt8]) -> Field {
        bytes.withUnsafeBufferPointer { buffer in
            var parser = Parser(bytes: buffer)
            parser.skipSpace()
            guard parser.peek == UInt8(ascii: "{") else {
                return parser.skipValue(depth: 0) && parser.atEndAfterSpace ? .notObject : .invalid
            }
            parser.index += 1
            let key = Array(name.utf8)
            var found: Field = .missing
            parser.skipSpace()
            if parser.peek == UInt8(ascii: "}") {
                parser.index += 1
                return parser.atEndAfterSpace ? .missing : .invalid
            }
            while true {
                parser.skipSpace()
                guard let member = parser.string() else { return .invalid }
                parser.skipSpace()
                guard parser.peek == UInt8(ascii: ":") else { return .invalid }
                parser.index += 1
                parser.skipSpace()
                if member == key {
                    if parser.peek == UInt8(ascii: "\"") {
                        guard let value = parser.string() else { return .invalid }
                        found = .text(String(decoding: value, as: UTF8.self))
                    } else {
                        guard parser.skipValue(depth: 1) else { return .invalid }
                        found = .notString
                    }
                } else {
                    guard parser.skipValue(depth: 1) else { return .invalid }
                }
                parser.skipSpace()
                switch parser.peek {
                case UInt8(ascii: ","): parser.index += 1
                case UInt8(ascii: "}"):
                    parser.index += 1
                    return parser.atEndAfterSpace ? found : .invalid
                default: return .invalid
                }
            }
        }
    }

    /// A cursor over the record's bytes.
    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while index < bytes.count {
                let c = bytes[index]
                guard c == 32 || c == 10 || c == 13 || c == 9 else { return }
                index += 1
            }
        }

        /// Whether only whitespace follows.
        var atEndAfterSpace: Bool {
            mutating get {
                skipSpace()
                return index == bytes.count
            }
        }

        /// A string's decoded UTF-8 bytes, the cursor on its opening quote; nil if malformed.
        mutating func string() -> [UInt8]? {
            guard peek == UInt8(ascii: "\"") else { return nil }
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                // Copy the run up to the next quote, backslash or control character in one go.
                let start = index
                while index < bytes.count, bytes[index] != 0x22, bytes[index] != 0x5C, bytes[index] >= 0x20 {
                    index += 1
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                guard index < bytes.count else { return nil }
                let c = bytes[index]
                index += 1
                switch c {
                case 0x22: return out
                case 0x5C:
                    guard let escaped = peek else { return nil }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                    case UInt8(ascii: "b"): out.append(8)
                    case UInt8(ascii: "f"): out.append(12)
                    case UInt8(ascii: "n"): out.append(10)
                    case UInt8(ascii: "r"): out.append(13)
                    case UInt8(ascii: "t"): out.append(9)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar), peek == 0x5C, index + 1 < bytes.count,
                            bytes[index + 1] == UInt8(ascii: "u")
                        {
                            let mark = index
                            index += 2
                            if let low = hex4(), (0xDC00..<0xE000).contains(low) {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                index = mark
                            }
                        }
                        // A lone surrogate has no UTF-8 form: it becomes U+FFFD, as in decoding.
                        let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                        out.append(contentsOf: String(character).utf8)
                    default: return nil
                    }
                default: return nil  // a raw control character
                }
            }
            return nil
        }

        private mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let digit: UInt8
                switch c {
                case 0x30...0x39: digit = c - 0x30
                case 0x41...0x46: digit = c - 0x41 + 10
                case 0x61...0x66: digit = c - 0x61 + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        /// Moves past one JSON value; false if it is malformed.
        mutating func skipValue(depth: Int) -> Bool {
            guard depth <= JSONLine.maxDepth, let c = peek else { return false }
            switch c {
            case UInt8(ascii: "\""): return string() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = c == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                index += 1
                skipSpace()
                if peek == close {
                    index += 1
                    return true
                }
                while true {
                    skipSpace()
                    if close == UInt8(ascii: "}") {
                        guard string() != nil else { return false }
                        skipSpace()
                        guard peek == UInt8(ascii: ":") else { return false }
                        index += 1
                        skipSpace()
                    }
                    guard skipValue(depth: depth + 1) else { return false }
                    skipSpace()
                    guard let next = peek else { return false }
                    index += 1
                    if next == close { return true }
                    guard next == UInt8(ascii: ",") else { return false }
                }
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard index + n <= bytes.count else { return false }
            for k in 0..<n where bytes[index + k] != word.utf8Start[k] { return false }
            index += n
            return true
        }

        /// A number as JSON writes it: -?int(.digits)?([eE][+-]?digits)?
        private mutating func number() -> Bool {
            func digits() -> Int {
                let start = index
                while let c = peek, (0x30...0x39).contains(c) { index += 1 }
                return index - start
            }
            if peek == UInt8(ascii: "-") { index += 1 }
            let integer = index
            let n = digits()
            guard n > 0, n == 1 || bytes[integer] != 0x30 else { return false }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { return false }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { return false }
            }
            return true
        }
    }
}
