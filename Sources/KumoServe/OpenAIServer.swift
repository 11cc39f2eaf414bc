import Foundation
import Hummingbird
import NIOCore

/// Limits the server enforces on requests.
public struct ServerLimits: Sendable {
    /// Largest request body in bytes (413 beyond).
    public var maxBodyBytes = 1 << 20
    /// Largest `max_tokens`.
    public var maxNewTokens = 1024

    /// The defaults: 1 MiB bodies, 1024 new tokens.
    public init() {}
}

/// The OpenAI-compatible HTTP API over a `GenerationQueue`: /v1/completions, /v1/chat/completions
/// (with server-sent events), /v1/models, /health, and vLLM's /tokenizer_info, /tokenize, /detokenize.
public struct OpenAIServer: Sendable {
    let queue: GenerationQueue
    let served: ServedModel
    let generator: Generator
    let modelName: String
    let limits: ServerLimits

    /// A server for `served`, generating through `generator` (whose slots bound each batch).
    public init(served: ServedModel, generator: Generator, modelName: String, limits: ServerLimits = .init()) {
        self.served = served
        self.generator = generator
        self.modelName = modelName
        self.limits = limits
        queue = GenerationQueue(generator: generator)
    }

    /// Serves on host:port until SIGTERM or SIGINT; `onRunning` receives the bound port.
    public func run(host: String, port: Int, onRunning: @escaping @Sendable (Int) -> Void) async throws {
        let router = Router()
        router.get("health") { _, _ in json(["status": "ok"]) }
        router.get("v1/models") { _, _ in
            json(["object": "list", "data": [["id": modelName, "object": "model", "owned_by": "kumo"]]])
        }
        router.post("v1/completions") { request, _ in
            await respond { try await completions(try await body(request)) }
        }
        router.post("v1/chat/completions") { request, _ in
            await respond { try await chat(try await body(request)) }
        }
        router.get("tokenizer_info") { _, _ in json(tokenizerInfo()) }
        router.post("tokenize") { request, _ in await respond { json(try tokenize(try await body(request))) } }
        router.post("detokenize") { request, _ in await respond { json(try detokenize(try await body(request))) } }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) })
        try await app.runService()
    }

    private func body(_ request: Request) async throws -> JSONFields {
        var request = request
        do {
            return try JSONFields(Data(buffer: try await request.collectBody(upTo: limits.maxBodyBytes)))
        } catch is NIOTooManyBytesError {
            throw APIError(status: 413, message: "the body exceeds \(limits.maxBodyBytes) bytes", param: nil)
        }
    }

    private func sampling(_ f: JSONFields) throws -> SamplingParameters {
        SamplingParameters(
            temperature: try f.number("temperature", default: 1, in: 0...2),
            topK: try f.integer("top_k", default: 0, in: 0...1_000_000)!,
            topP: try f.number("top_p", default: 1, in: 0.000_001...1),
            repetitionPenalty: try f.number("repetition_penalty", default: 1, in: 0.01...100),
            seed: UInt64(try f.integer("seed", default: 0, in: 0...Int.max)!))
    }

    private func checkFits(_ prompt: [Int32], _ maxTokens: Int) throws {
        let capacity = generator.engine.cache.capacity
        guard !prompt.isEmpty, prompt.count + maxTokens <= capacity else {
            throw APIError(
                status: 400,
                message: "the prompt (\(prompt.count) tokens) plus max_tokens (\(maxTokens)) must be 1...\(capacity)",
                param: "max_tokens")
        }
    }

    private func tokenText(_ id: Int32) -> String { String(decoding: generator.bytes([id]), as: UTF8.self) }

    private func completions(_ f: JSONFields) async throws -> Response {
        guard try f.integer("n", default: 1, in: 1...1) == 1, try !f.bool("stream", default: false) else {
            throw APIError(status: 400, message: "only n = 1 and stream = false are supported here", param: "n")
        }
        let maxTokens = try f.integer("max_tokens", default: 16, in: 0...limits.maxNewTokens)!
        let echo = try f.bool("echo", default: false)
        let logprobs = try f.integer("logprobs", default: nil, in: 0...20)
        let params = try sampling(f)
        let stops = try f.stopStrings()
        let prompts = try PromptInput.parse(f, vocab: served.model.config.vocabSize).map { p -> [Int32] in
            switch p {
            case .text(let s): return try served.encode(s)
            case .tokens(let ids): return ids
            }
        }
        for p in prompts { try checkFits(p, maxTokens) }
        var choices: [[String: Any]] = []
        var promptTokens = 0
        var completionTokens = 0
        for (index, prompt) in prompts.enumerated() {
            let request = GenerationRequest(
                prompt: prompt, maxNewTokens: maxTokens, sampling: params, stopStrings: stops,
                stopTokens: served.stopTokens, logprobs: logprobs, echoLogprobs: echo && logprobs != nil)
            let r = await queue.submit(request)
            promptTokens += prompt.count
            completionTokens += r.tokens.count
            let promptText = String(decoding: generator.bytes(prompt), as: UTF8.self)
            var choice: [String: Any] = [
                "index": index, "text": (echo ? promptText : "") + r.text, "finish_reason": r.finishReason.rawValue,
                "logprobs": NSNull(),
            ]
            if logprobs != nil {
                var entries: [(Int32, TokenLogprob?)] =
                    echo ? [(prompt[0], nil)] + zip(prompt.dropFirst(), r.promptLogprobs).map { ($0, $1) } : []
                entries += r.logprobs.map { ($0.token, $0) }
                choice["logprobs"] = [
                    "tokens": entries.map { tokenText($0.0) },
                    "token_logprobs": entries.map { $0.1.map { $0.logprob as Any } ?? NSNull() },
                    "top_logprobs": entries.map { e -> Any in
                        guard let lp = e.1 else { return NSNull() }
                        return Dictionary(lp.top.map { (tokenText($0.token), $0.logprob) }, uniquingKeysWith: max)
                    },
                ]
            }
            choices.append(choice)
        }
        return json([
            "id": "cmpl-\(UUID().uuidString)", "object": "text_completion",
            "created": Int(Date().timeIntervalSince1970),
            "model": modelName, "choices": choices,
            "usage": [
                "prompt_tokens": promptTokens, "completion_tokens": completionTokens,
                "total_tokens": promptTokens + completionTokens,
            ],
        ])
    }

    private func chat(_ f: JSONFields) async throws -> Response {
        guard let template = served.chatTemplate else {
            throw APIError(status: 400, message: "the model has no chat template Kumo knows", param: "messages")
        }
        guard let list = f.object["messages"] as? [[String: Any]], !list.isEmpty else {
            throw APIError(
                status: 400, message: "'messages' must be a non-empty list of {role, content}", param: "messages")
        }
        let messages = try list.map { m -> ChatMessage in
            guard let role = m["role"] as? String, ["system", "user", "assistant"].contains(role),
                let content = m["content"] as? String
            else {
                throw APIError(
                    status: 400, message: "each message needs role system|user|assistant and string content",
                    param: "messages")
            }
            return ChatMessage(role: role, content: content)
        }
        let maxTokens = try f.integer("max_tokens", default: 256, in: 1...limits.maxNewTokens)!
        let stream = try f.bool("stream", default: false)
        let prompt = try served.encode(template.render(messages))
        try checkFits(prompt, maxTokens)
        let request = GenerationRequest(
            prompt: prompt, maxNewTokens: maxTokens, sampling: try sampling(f),
            stopStrings: try f.stopStrings() + template.stopStrings, stopTokens: served.stopTokens)
        let id = "chatcmpl-\(UUID().uuidString)"
        let created = Int(Date().timeIntervalSince1970)
        func chunk(_ delta: [String: Any], _ finish: String?) -> [String: Any] {
            [
                "id": id, "object": "chat.completion.chunk", "created": created, "model": modelName,
                "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { $0 as Any } ?? NSNull()]],
            ]
        }
        guard stream else {
            let r = await queue.submit(request)
            return json([
                "id": id, "object": "chat.completion", "created": created, "model": modelName,
                "choices": [
                    [
                        "index": 0, "message": ["role": "assistant", "content": r.text],
                        "finish_reason": r.finishReason.rawValue,
                    ]
                ],
                "usage": [
                    "prompt_tokens": prompt.count, "completion_tokens": r.tokens.count,
                    "total_tokens": prompt.count + r.tokens.count,
                ],
            ])
        }
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        continuation.yield(sse(chunk(["role": "assistant"], nil)))
        let queue = self.queue
        Task {
            let r = await queue.submit(request) { continuation.yield(sse(chunk(["content": $0], nil))) }
            continuation.yield(sse(chunk([:], r.finishReason.rawValue)))
            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            continuation.finish()
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: events))
    }
}

/// One server-sent event carrying `object` as JSON.
private func sse(_ object: [String: Any]) -> ByteBuffer {
    let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
    return ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n")
}

/// A 200 JSON response.
private func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Runs `body`, turning an `APIError` into its status and JSON error body.
private func respond(_ body: () async throws -> Response) async -> Response {
    do {
        return try await body()
    } catch let e as APIError {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: .init(code: e.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: e.body)))
    } catch {
        let e = APIError(status: 500, message: "\(error)", param: nil)
        return Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(bytes: e.body)))
    }
}
