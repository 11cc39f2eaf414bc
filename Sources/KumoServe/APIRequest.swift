import Foundation
import KumoInference

/// A request the HTTP API refuses, with the status and the OpenAI-style error body to send.
public struct APIError: Error, Sendable {
    /// HTTP status code (400, 404, 405, 413).
    public var status: Int
    /// What is wrong and what to send instead.
    public var message: String
    /// The offending field, if any.
    public var param: String?
    /// OpenAI's machine-readable code (`model_not_found`), if any.
    public var code: String?

    /// An error with `status`, `message`, the offending field and OpenAI's code, if any.
    public init(status: Int, message: String, param: String?, code: String? = nil) {
        self.status = status
        self.message = message
        self.param = param
        self.code = code
    }

    /// The JSON error body, shaped as OpenAI's: {"error": {"message", "type", "param", "code"}}.
    public var body: Data {
        let error: [String: Any] = [
            "message": message, "type": status == 413 ? "request_too_large" : "invalid_request_error",
            "param": param ?? NSNull(), "code": code ?? NSNull(),
        ]
        return (try? JSONSerialization.data(withJSONObject: ["error": error])) ?? Data()
    }
}

/// Typed access to the fields of a JSON request body, throwing `APIError` (400) that names the field.
struct JSONFields {
    let object: [String: Any]

    init(_ data: Data) throws {
        guard let json = try? JSONSerialization.jsonObject(with: data), let object = json as? [String: Any] else {
            throw APIError(status: 400, message: "the body must be a JSON object", param: nil)
        }
        self.object = object
    }

    private func bad(_ key: String, _ expected: String) -> APIError {
        APIError(status: 400, message: "'\(key)' must be \(expected)", param: key)
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let v = object[key], !(v is NSNull) else { return value }
        guard isBoolean(v), let b = v as? Bool else { throw bad(key, "a boolean") }
        return b
    }

    func number(_ key: String, default value: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let v = object[key], !(v is NSNull) else { return value }
        guard !isBoolean(v), let n = v as? NSNumber, range.contains(n.doubleValue) else {
            throw bad(key, "a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return n.doubleValue
    }

    func integer(_ key: String, default value: Int?, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = object[key], !(v is NSNull) else { return value }
        guard !isBoolean(v), let n = v as? NSNumber, n.doubleValue.rounded() == n.doubleValue,
            range.contains(n.intValue)
        else { throw bad(key, "an integer in \(range.lowerBound)...\(range.upperBound)") }
        return n.intValue
    }

    /// `stop`: a string or a list of up to 4 strings.
    func stopStrings() throws -> [String] {
        switch object["stop"] {
        case nil, is NSNull: return []
        case let s as String: return [s]
        case let list as [Any]:
            guard list.count <= 4, let strings = list as? [String] else {
                throw bad("stop", "a string or up to 4 strings")
            }
            return strings
        default: throw bad("stop", "a string or up to 4 strings")
        }
    }
}

/// Whether a decoded JSON value is true or false (not a number).
private func isBoolean(_ v: Any) -> Bool {
    if type(of: v) == Bool.self { return true }
    guard let n = v as? NSNumber else { return false }
    return String(cString: n.objCType) == "c"
}

/// A completion prompt: text, or token ids.
enum PromptInput {
    case text(String)
    case tokens([Int32])

    /// `prompt`: a string, a list of strings, a list of token ids or a list of lists of token ids; at
    /// most `maxPrompts` prompts.
    static func parse(_ fields: JSONFields, vocab: Int, maxPrompts: Int) throws -> [PromptInput] {
        let bad = APIError(
            status: 400, message: "'prompt' must be a string, a list of strings, or a list of (lists of) token ids",
            param: "prompt")
        func ids(_ any: Any) throws -> [Int32]? {
            guard let list = any as? [Any], !list.isEmpty, list.allSatisfy({ $0 is NSNumber }) else { return nil }
            let values = list.map { ($0 as! NSNumber).intValue }
            guard values.allSatisfy({ $0 >= 0 && $0 < vocab }) else {
                throw APIError(status: 400, message: "token ids must be in 0..<\(vocab)", param: "prompt")
            }
            return values.map(Int32.init)
        }
        switch fields.object["prompt"] {
        case let s as String: return [.text(s)]
        case let list as [Any] where !list.isEmpty:
            if let single = try ids(list) { return [.tokens(single)] }
            guard list.count <= maxPrompts else {
                throw APIError(
                    status: 400,
                    message: "'prompt' holds \(list.count) prompts; this server takes at most \(maxPrompts) per "
                        + "request (kumo serve --max-prompts): send them in several requests",
                    param: "prompt")
            }
            if let strings = list as? [String] { return strings.map { .text($0) } }
            return try list.map { item in
                guard let i = try ids(item) else { throw bad }
                return .tokens(i)
            }
        default: throw bad
        }
    }
}

extension ServedModel {
    /// The token ids of prompt text, refused (400, `prompt`) when one lies outside the model's
    /// vocabulary, as for a prompt of ids.
    func promptIds(_ text: String) throws(APIError) -> [Int32] {
        do {
            return try encode(text)
        } catch {
            throw APIError(status: 400, message: error.message, param: "prompt")
        }
    }
}
