import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Seeded malformed and oversized requests against `kumo serve` on 127.0.0.1 (a bounded number, in
/// bounded time): every answer is a 2xx or a 4xx with a JSON error, never a 5xx, and the server
/// stays up and answers /health throughout.
final class ServeFuzzCLITests: XCTestCase {
    private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// splitmix64: the same requests on every run.
    private func next(_ n: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(n))
    }

    private func pick<T>(_ values: [T]) -> T { values[next(values.count)] }

    /// A JSON value of a random kind, nested up to `depth` levels.
    private func value(_ depth: Int = 2) -> Any {
        switch next(depth > 0 ? 11 : 9) {
        case 0: return NSNull()
        case 1: return next(2) == 0
        case 2: return pick([0, -1, 1, 7, 49151, 49152, 65536, Int(Int32.max), Int.max, Int.min])
        case 3: return pick([0.5, -0.0, 1e308, -1e308, 2.000001, 1e-320])
        case 4: return pick(["", "x", "The capital of France is", String(repeating: "é", count: 300), "<|im_end|>"])
        case 5: return [Int](repeating: 504, count: next(5))
        case 6: return pick([[["role": "user", "content": "Hi"]], [["role": "tool"]], [[:]]])
        case 7: return (0..<next(4)).map { _ in pick(["a", "", "b"]) }
        case 8: return (0..<next(3)).map { _ in [Int](repeating: 282, count: next(3)) }
        case 9: return (0..<next(4)).map { _ in value(depth - 1) }
        default: return Dictionary(uniqueKeysWithValues: (0..<next(3)).map { ("k\($0)", value(depth - 1)) })
        }
    }

    /// A body with random values for some of the API's fields (and an unknown one).
    private func fields() -> Data {
        let keys = [
            "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed", "stop",
            "echo", "logprobs", "n", "stream", "model", "tokens", "ignore_eos", "unknown",
        ]
        var object: [String: Any] = [:]
        for _ in 0..<(1 + next(5)) { object[pick(keys)] = value() }
        if object["max_tokens"] == nil { object["max_tokens"] = 2 }
        return (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
    }

    /// A body that is not a JSON object, or is one too large, too deep or with too many prompts.
    private func malformed() -> Data {
        switch next(7) {
        case 0: return Data((0..<next(64)).map { _ in UInt8(next(256)) })
        case 1: return Data(#"{"prompt": "unterminated"#.utf8)
        case 2: return Data((String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000)).utf8)
        case 3: return Data(repeating: UInt8(ascii: "x"), count: 5000)
        case 4: return Data(#"{"prompt": [\#((0..<40).map { _ in "[504]" }.joined(separator: ","))]}"#.utf8)
        case 5: return Data(#"[1, 2, 3]"#.utf8)
        default: return Data(#"{"prompt": "\ud800", "max_tokens": 1e999}"#.utf8)
        }
    }

    func testMalformedAndOversizedRequestsNeverTakeTheServerDown() async throws {
        let server = try ServedKumo(
            for: self,
            [
                "--slots", "2", "--context", "128", "--max-body-bytes", "4096", "--max-new-tokens", "4",
                "--max-prompts", "4",
            ])
        let paths = [
            "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize", "/v1/models", "/health",
            "/tokenizer_info", "/v1/nope", "/", "/v1/completions/../health", "/%00", "/v1/models?x=1",
        ]
        let started = Date()
        var statuses: [Int: Int] = [:]
        for i in 0..<240 where Date().timeIntervalSince(started) < 240 {
            let body = next(3) == 0 ? malformed() : fields()
            // Two requests in three go to an API endpoint with its method; the others anywhere.
            let api = next(3) != 0
            let method = api ? "POST" : pick(["POST", "GET", "PUT", "DELETE", "PATCH"])
            let path = api ? pick(Array(paths.prefix(4))) : pick(paths)
            let (status, data) = try await server.call(
                path, method: method, raw: method == "GET" || method == "DELETE" ? nil : body, timeout: 60)
            statuses[status, default: 0] += 1
            let request = "\(method) \(path) \(String(decoding: body.prefix(200), as: UTF8.self))"
            XCTAssertTrue((200..<500).contains(status), "\(status) for \(request)")
            if status >= 400 && status != 413 {
                XCTAssertNotNil(try? ServedKumo.error(data)["message"] as? String, "no JSON error for \(request)")
            }
            if i % 20 == 0 { try sendRaw(garbage: i, to: server) }
            if i % 40 == 0 {
                let (health, _) = try await server.call("/health", timeout: 30)
                XCTAssertEqual(health, 200)
            }
        }
        print("statuses: \(statuses.sorted { $0.key < $1.key })")
        XCTAssertTrue(server.process.isRunning, server.log)
        let (health, data) = try await server.call("/health", timeout: 30)
        XCTAssertEqual(health, 200)
        XCTAssertEqual(try ServedKumo.object(data)["status"] as? String, "ok")
    }

    /// Sends bytes that are not a valid HTTP request over a raw TCP connection and hangs up.
    private func sendRaw(garbage i: Int, to server: ServedKumo) throws {
        let requests = [
            "GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
            "POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{",
            "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "\u{0}\u{1}\u{2}\r\n\r\n",
            "GET /health HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 2000) + "\r\n",
        ]
        let port = UInt16(server.base.split(separator: ":").last!)!
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertEqual(connected, 0)
        let bytes = Array(requests[(i / 20) % requests.count].utf8)
        _ = send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL))
        var reply = [UInt8](repeating: 0, count: 512)
        _ = recv(fd, &reply, reply.count, 0)
    }
}
