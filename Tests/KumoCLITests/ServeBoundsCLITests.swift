import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `kumo serve` kept bounded (issue 16, item 10): prompts per request capped, a hung-up client's
/// generation cancelled, the SIGTERM drain bounded, and errors, model names and streaming
/// completions as OpenAI's API has them.
final class ServeBoundsCLITests: XCTestCase {
    /// A long generation: 2000 sampled tokens that no end-of-sequence token cuts short.
    private let long: [String: Any] = [
        "prompt": "Once upon a time", "max_tokens": 2000, "temperature": 1, "seed": 7, "ignore_eos": true,
    ]
    /// Flags of a server with one slot that a long generation keeps busy.
    private let oneSlot = ["--slots", "1", "--context", "2048", "--max-new-tokens", "2000"]

    func testPromptCapEmptyPromptUnknownRoutesAndModelsAreOpenAIErrors() async throws {
        let server = try ServedKumo(
            for: self,
            ["--context", "512", "--max-new-tokens", "16", "--max-prompts", "4", "--served-model-name", "kumo-test"])
        let ids = [[504, 3575], [282], [4649], [314]]
        var (status, data) = try await server.call("/v1/completions", body: ["prompt": ids + [[42]], "max_tokens": 1])
        XCTAssertEqual(status, 400)
        XCTAssertEqual(try ServedKumo.error(data)["param"] as? String, "prompt")
        XCTAssertTrue((try ServedKumo.error(data)["message"] as? String)?.contains("--max-prompts") == true)
        (status, data) = try await server.call("/v1/completions", body: ["prompt": ids, "max_tokens": 1])
        XCTAssertEqual(status, 200)
        XCTAssertEqual((try ServedKumo.object(data)["choices"] as? [Any])?.count, 4)

        (status, data) = try await server.call("/v1/completions", body: ["prompt": "", "max_tokens": 1])
        XCTAssertEqual(status, 400)
        XCTAssertEqual(try ServedKumo.error(data)["param"] as? String, "prompt")

        (status, data) = try await server.call("/v1/nothing-here")
        XCTAssertEqual(status, 404)
        XCTAssertTrue((try ServedKumo.error(data)["message"] as? String)?.contains("/v1/nothing-here") == true)
        for (path, method) in [("/v1/completions", "GET"), ("/health", "POST"), ("/v1/models", "DELETE")] {
            (status, data) = try await server.call(path, method: method)
            XCTAssertEqual(status, 405, "\(method) \(path)")
            XCTAssertNotNil(try ServedKumo.error(data)["message"] as? String)
        }

        (status, data) = try await server.call("/v1/models")
        XCTAssertEqual((try ServedKumo.object(data)["data"] as? [[String: Any]])?.first?["id"] as? String, "kumo-test")
        (status, data) = try await server.call("/v1/completions", body: ["model": "gpt-4o", "prompt": [504]])
        XCTAssertEqual(status, 404)
        XCTAssertEqual(try ServedKumo.error(data)["code"] as? String, "model_not_found")
        XCTAssertEqual(try ServedKumo.error(data)["param"] as? String, "model")
        (status, data) = try await server.call(
            "/v1/chat/completions", body: ["model": "gpt-4o", "messages": [["role": "user", "content": "Hi"]]])
        XCTAssertEqual(status, 404)
        (status, _) = try await server.call(
            "/v1/completions", body: ["model": "kumo-test", "prompt": [504], "max_tokens": 1])
        XCTAssertEqual(status, 200)
    }

    func testStreamingCompletionsSendTheTextOfTheNonStreamedOneAsEvents() async throws {
        let server = try ServedKumo(for: self, ["--context", "512", "--max-new-tokens", "16"])
        let body: [String: Any] = ["prompt": "The capital of France is", "max_tokens": 2, "temperature": 0]
        var (status, data) = try await server.call("/v1/completions", body: body.merging(["stream": true]) { $1 })
        XCTAssertEqual(status, 200)
        let events = String(decoding: data, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        XCTAssertEqual(events.last, "data: [DONE]")
        let choices = try events.dropLast().map { event -> [String: Any] in
            XCTAssertTrue(event.hasPrefix("data: "), event)
            let chunk = try ServedKumo.object(Data(event.dropFirst(6).utf8))
            XCTAssertEqual(chunk["object"] as? String, "text_completion")
            return try XCTUnwrap((chunk["choices"] as? [[String: Any]])?.first)
        }
        XCTAssertEqual(choices.compactMap { $0["text"] as? String }.joined(), " Paris.")
        XCTAssertEqual(choices.last?["finish_reason"] as? String, "length")
        (status, data) = try await server.call("/v1/completions", body: body)
        XCTAssertEqual(
            (try ServedKumo.object(data)["choices"] as? [[String: Any]])?.first?["text"] as? String, " Paris.")
    }

    /// A client that hangs up mid-generation frees its slot: with one slot, the next request is
    /// answered at once instead of after the abandoned 2000 tokens.
    func testAHungUpClientsGenerationIsCancelledAndFreesItsSlot() async throws {
        let server = try ServedKumo(for: self, oneSlot)
        for stream in [false, true] {
            let task = URLSession.shared.dataTask(
                with: try server.request("/v1/completions", body: long.merging(["stream": stream]) { $1 })
            ) { _, _, _ in }
            task.resume()
            try await Task.sleep(for: .seconds(2))
            task.cancel()
            let start = Date()
            let (status, data) = try await server.call(
                "/v1/completions", body: ["prompt": [504], "max_tokens": 1], timeout: 60)
            let seconds = Date().timeIntervalSince(start)
            print("stream \(stream): next request answered \(seconds) s after the hang-up")
            XCTAssertEqual(status, 200, String(decoding: data, as: UTF8.self))
            XCTAssertLessThan(seconds, 10, "the hung-up generation kept the only slot (stream: \(stream))")
        }
    }

    /// SIGTERM's drain ends after --shutdown-timeout (exit 1); a second signal ends it at once (128 + 15).
    func testSIGTERMDrainIsBoundedAndASecondSignalExitsAtOnce() async throws {
        for (timeout, signals, expected) in [("1", 1, Int32(1)), ("600", 2, Int32(143))] {
            let server = try ServedKumo(for: self, oneSlot + ["--shutdown-timeout", timeout])
            let task = URLSession.shared.dataTask(with: try server.request("/v1/completions", body: long)) { _, _, _ in
            }
            task.resume()
            try await Task.sleep(for: .seconds(2))
            let start = Date()
            for _ in 0..<signals {
                kill(server.process.processIdentifier, SIGTERM)
                try await Task.sleep(for: .milliseconds(300))
            }
            let status = server.exitStatus(within: 20)
            print(
                "--shutdown-timeout \(timeout), \(signals) signal(s): exit \(status.map { "\($0)" } ?? "none") after \(Date().timeIntervalSince(start)) s"
            )
            XCTAssertEqual(status, expected, server.log)
            task.cancel()
        }
    }
}
