import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `kumo serve` over SmolLM2-135M-Instruct, exercised with URLSession: every endpoint, bad and oversized
/// requests, concurrent requests (a burst of 50), streaming and SIGTERM.
final class ServeCLITests: XCTestCase {
    private var server: ServedKumo!

    override func setUpWithError() throws {
        server = try ServedKumo(
            for: self, ["--slots", "2", "--context", "512", "--max-body-bytes", "4096", "--max-new-tokens", "64"])
    }

    private func call(_ path: String, body: Any? = nil, raw: Data? = nil) async throws -> (Int, Data) {
        try await server.call(path, body: body, raw: raw)
    }

    private func object(_ data: Data) throws -> [String: Any] { try ServedKumo.object(data) }

    func testEndpointsValidationConcurrencyStreamingAndSIGTERM() async throws {
        let server = try XCTUnwrap(self.server).process
        var (status, data) = try await call("/health")
        XCTAssertEqual(status, 200)
        (status, data) = try await call("/v1/models")
        let models = try object(data)["data"] as? [[String: Any]]
        XCTAssertEqual(models?.first?["id"] as? String, "SmolLM2-135M-Instruct.Q4_1.gguf")

        // Greedy completion: the same text as `kumo generate` and transformers (" Paris.").
        (status, data) = try await call(
            "/v1/completions", body: ["prompt": "The capital of France is", "max_tokens": 2, "temperature": 0])
        XCTAssertEqual(status, 200)
        let choice = (try object(data)["choices"] as? [[String: Any]])?.first
        XCTAssertEqual(choice?["text"] as? String, " Paris.")

        // echo + logprobs, as lm-evaluation-harness's local-completions backend scores log-likelihoods.
        (status, data) = try await call(
            "/v1/completions",
            body: [
                "prompt": [504, 3575, 282, 4649, 314], "max_tokens": 1, "temperature": 0, "echo": true, "logprobs": 1,
            ])
        XCTAssertEqual(status, 200)
        let lp = ((try object(data)["choices"] as? [[String: Any]])?.first?["logprobs"]) as? [String: Any]
        let tokenLogprobs = lp?["token_logprobs"] as? [Any]
        XCTAssertEqual(tokenLogprobs?.count, 6, "5 prompt tokens and 1 generated")
        XCTAssertTrue(tokenLogprobs?.first is NSNull)
        let values = tokenLogprobs?.dropFirst().compactMap { ($0 as? NSNumber)?.doubleValue } ?? []
        XCTAssertEqual(values.count, 5)
        XCTAssertTrue(values.allSatisfy { $0 < 0 && $0.isFinite }, "\(values)")

        // Bad fields → 400 with a JSON error naming the field; oversized body → 413.
        (status, data) = try await call("/v1/completions", body: ["prompt": "x", "temperature": "hot"])
        XCTAssertEqual(status, 400)
        XCTAssertEqual((try object(data)["error"] as? [String: Any])?["param"] as? String, "temperature")
        (status, data) = try await call("/v1/completions", body: ["prompt": "x", "max_tokens": 100_000])
        XCTAssertEqual(status, 400)
        (status, _) = try await call("/v1/completions", raw: Data(repeating: UInt8(ascii: " "), count: 10_000))
        XCTAssertEqual(status, 413)

        // Concurrent requests: all answered.
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<5 {
                group.addTask {
                    try await self.call(
                        "/v1/chat/completions",
                        body: ["messages": [["role": "user", "content": "Count to \(i + 2)."]], "max_tokens": 8]
                    ).0
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(results, [200, 200, 200, 200, 200])

        // A burst of 50 concurrent completions (one token each): all answered, none dropped.
        let burst = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<50 {
                group.addTask {
                    try await self.call(
                        "/v1/completions", body: ["prompt": [504, 3575 + i], "max_tokens": 1, "temperature": 0]
                    ).0
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(burst.count, 50)
        XCTAssertEqual(burst.filter { $0 == 200 }.count, 50, "statuses: \(burst)")

        // Streaming chat: server-sent events ending in [DONE].
        (status, data) = try await call(
            "/v1/chat/completions",
            body: [
                "messages": [["role": "user", "content": "What is the capital of Japan?"]], "stream": true,
                "temperature": 0, "max_tokens": 16,
            ])
        XCTAssertEqual(status, 200)
        let events = String(decoding: data, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        XCTAssertEqual(events.last, "data: [DONE]")
        let content = events.dropLast().compactMap { event -> String? in
            guard let obj = try? object(Data(event.dropFirst(6).utf8)),
                let delta = (obj["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
            else { return nil }
            return delta["content"] as? String
        }.joined()
        XCTAssertEqual(content, "The capital of Japan is Tokyo.")

        server.terminate()
        server.waitUntilExit()
        XCTAssertEqual(server.terminationReason, .exit)
        XCTAssertEqual(server.terminationStatus, 0, "kumo serve exits 0 on SIGTERM")
    }

    /// vLLM's tokenizer endpoints, which lm-evaluation-harness's `tokenizer_backend=remote` uses.
    func testTokenizerEndpointsRoundTripThePromptIdsOfCompletions() async throws {
        var (status, data) = try await call("/tokenize", body: ["prompt": "The capital of France is"])
        XCTAssertEqual(status, 200)
        let ids = try object(data)["tokens"] as? [Int]
        XCTAssertEqual(ids, [504, 3575, 282, 4649, 314])
        (status, data) = try await call("/detokenize", body: ["tokens": ids ?? []])
        XCTAssertEqual(status, 200)
        XCTAssertEqual(try object(data)["prompt"] as? String, "The capital of France is")

        (status, data) = try await call("/tokenizer_info")
        XCTAssertEqual(status, 200)
        let info = try object(data)
        XCTAssertEqual(info["model_max_length"] as? Int, 512)
        let eos = try XCTUnwrap(info["eos_token"] as? String, "eos_token: \(info)")
        (status, data) = try await call("/tokenize", body: ["prompt": eos])
        XCTAssertEqual((try object(data)["tokens"] as? [Int])?.count, 1, "\(eos) is one token")

        (status, data) = try await call("/tokenize", body: ["prompt": 5])
        XCTAssertEqual(status, 400)
        XCTAssertEqual((try object(data)["error"] as? [String: Any])?["param"] as? String, "prompt")
        (status, data) = try await call("/detokenize", body: ["tokens": [1_000_000]])
        XCTAssertEqual(status, 400)
        XCTAssertEqual((try object(data)["error"] as? [String: Any])?["param"] as? String, "tokens")
    }
}
