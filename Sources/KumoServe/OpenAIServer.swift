import Foundation
import Hummingbird
import KumoData
import KumoInference
import NIOCore

/// Limits the server enforces on requests.
public struct ServerLimits: Sendable {
    /// Largest request body in bytes (413 beyond).
    public var maxBodyBytes = 1 << 20
    /// Largest `max_tokens`.
    public var maxNewTokens = 1024
    /// Most prompts in one /v1/completions request (400 beyond).
    public var maxPrompts = 64

    /// The defaults: 1 MiB bodies, 1024 new tokens, 64 prompts per request.
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
        typealias Handler = @Sendable (Request, ServerContext) async throws -> Response
        let routes: [(String, HTTPRequest.Method, Handler)] = [
            ("health", .get, { _, _ in json(["status": "ok"]) }),
            (
                "v1/models", .get,
                { _, _ in
                    json(["object": "list", "data": [["id": modelName, "object": "model", "owned_by": "kumo"]]])
                }
            ),
            ("v1/completions", .post, { r, c in await respond { try await completions(try await body(r), c) } }),
            ("v1/chat/completions", .post, { r, c in await respond { try await chat(try await body(r), c) } }),
            ("tokenizer_info", .get, { _, _ in json(tokenizerInfo()) }),
            ("tokenize", .post, { r, _ in await respond { json(try tokenize(try await body(r))) } }),
            ("detokenize", .post, { r, _ in await respond { json(try detokenize(try await body(r))) } }),
        ]
        let router = Router(context: ServerContext.self)
        router.add(
            middleware: OpenAIErrorMiddleware(
                methods: Dictionary(uniqueKeysWithValues: routes.map { ("/" + $0.0, $0.1) })))
        for (path, method, handler) in routes { router.on(RouterPath(path), method: method, use: handler) }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) })
        try await app.runService()
    }

    /// The request's JSON body; a `model` other than the one served is refused (404, as OpenAI and vLLM do).
    private func body(_ request: Request) async throws -> JSONFields {
        var request = request
        let fields: JSONFields
        do {
            fields = try JSONFields(Data(buffer: try await request.collectBody(upTo: limits.maxBodyBytes)))
        } catch is NIOTooManyBytesError {
            throw APIError(status: 413, message: "the body exceeds \(limits.maxBodyBytes) bytes", param: nil)
        }
        switch fields.object["model"] {
        case nil, is NSNull: break
        case let name as String where name == modelName: break
        case let name as String:
            throw APIError(
                status: 404,
                message: "The model `\(name)` does not exist: this server serves `\(modelName)` (GET /v1/models)",
                param: "model", code: "model_not_found")
        default: throw APIError(status: 400, message: "'model' must be a string", param: "model")
        }
        return fields
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
        guard !prompt.isEmpty else {
            throw APIError(status: 400, message: "the prompt is empty: send at least one token", param: "prompt")
        }
        let capacity = generator.engine.cache.capacity
        guard prompt.count + maxTokens <= capacity else {
            throw APIError(
                status: 400,
                message: "the prompt (\(prompt.count) tokens) plus max_tokens (\(maxTokens)) must be 1...\(capacity)",
                param: "max_tokens")
        }
    }

    private func tokenText(_ id: Int32) -> String { String(decoding: generator.bytes([id]), as: UTF8.self) }

    /// The token ids of `prompt`'s prompts, each checked to fit the cache with `maxTokens` more.
    private func promptIds(_ f: JSONFields, maxTokens: Int) throws -> [[Int32]] {
        let prompts = try PromptInput.parse(f, vocab: served.model.config.vocabSize, maxPrompts: limits.maxPrompts)
            .map { p -> [Int32] in
                switch p {
                case .text(let s): return try served.promptIds(s)
                case .tokens(let ids): return ids
                }
            }
        for p in prompts { try checkFits(p, maxTokens) }
        return prompts
    }

    private func completions(_ f: JSONFields, _ context: ServerContext) async throws -> Response {
        guard try f.integer("n", default: 1, in: 1...1) == 1 else {
            throw APIError(status: 400, message: "only n = 1 is supported here", param: "n")
        }
        let stream = try f.bool("stream", default: false)
        let maxTokens = try f.integer("max_tokens", default: 16, in: 0...limits.maxNewTokens)!
        let echo = try f.bool("echo", default: false)
        let logprobs = try f.integer("logprobs", default: nil, in: 0...20)
        guard !stream || (!echo && logprobs == nil) else {
            throw APIError(
                status: 400, message: "echo and logprobs are not supported with stream: true",
                param: echo ? "echo" : "logprobs")
        }
        let params = try sampling(f)
        let stops = try f.stopStrings()
        let stopTokens = try f.bool("ignore_eos", default: false) ? [] : served.stopTokens
        let prompts = try promptIds(f, maxTokens: maxTokens)
        let watch = await ClientWatch.start(context.channel)
        let requests = prompts.map {
            GenerationRequest(
                prompt: $0, maxNewTokens: maxTokens, sampling: params, stopStrings: stops, stopTokens: stopTokens,
                logprobs: logprobs, echoLogprobs: echo && logprobs != nil, cancellation: watch.cancellation)
        }
        let id = "cmpl-\(UUID().uuidString)"
        let created = Int(Date().timeIntervalSince1970)
        if stream {
            return eventStream(requests, watch: watch) { [modelName] index, text, finish in
                [
                    "id": id, "object": "text_completion", "created": created, "model": modelName,
                    "choices": [
                        [
                            "index": index, "text": text ?? "", "logprobs": NSNull(),
                            "finish_reason": finish.map { $0.rawValue as Any } ?? NSNull(),
                        ]
                    ],
                ]
            }
        }
        defer { watch.stop() }
        var choices: [[String: Any]] = []
        var promptTokens = 0
        var completionTokens = 0
        for (index, request) in requests.enumerated() {
            let r = await queue.submit(request)
            promptTokens += request.prompt.count
            completionTokens += r.tokens.count
            choices.append(choice(index, request, r, echo: echo))
        }
        return json([
            "id": id, "object": "text_completion", "created": created, "model": modelName, "choices": choices,
            "usage": [
                "prompt_tokens": promptTokens, "completion_tokens": completionTokens,
                "total_tokens": promptTokens + completionTokens,
            ],
        ])
    }

    /// The completion choice of `request`'s result `r`: text (after the prompt's with `echo`) and logprobs.
    private func choice(_ index: Int, _ request: GenerationRequest, _ r: GenerationResult, echo: Bool)
        -> [String: Any]
    {
        let prompt = request.prompt
        let promptText = String(decoding: generator.bytes(prompt), as: UTF8.self)
        var choice: [String: Any] = [
            "index": index, "text": (echo ? promptText : "") + r.text, "finish_reason": r.finishReason.rawValue,
            "logprobs": NSNull(),
        ]
        guard request.logprobs != nil else { return choice }
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
        return choice
    }

    /// The `messages` of a chat request.
    private func chatMessages(_ f: JSONFields) throws -> [ChatMessage] {
        guard let list = f.object["messages"] as? [[String: Any]], !list.isEmpty else {
            throw APIError(
                status: 400, message: "'messages' must be a non-empty list of {role, content}", param: "messages")
        }
        return try list.map { m -> ChatMessage in
            guard let role = m["role"] as? String, ["system", "user", "assistant"].contains(role),
                let content = m["content"] as? String
            else {
                throw APIError(
                    status: 400, message: "each message needs role system|user|assistant and string content",
                    param: "messages")
            }
            return ChatMessage(role: role, content: content)
        }
    }

    private func chat(_ f: JSONFields, _ context: ServerContext) async throws -> Response {
        guard let template = served.chatTemplate else {
            throw APIError(status: 400, message: "the model has no chat template Kumo knows", param: "messages")
        }
        let messages = try chatMessages(f)
        let maxTokens = try f.integer("max_tokens", default: 256, in: 1...limits.maxNewTokens)!
        let stream = try f.bool("stream", default: false)
        let prompt = try served.promptIds(template.render(messages))
        try checkFits(prompt, maxTokens)
        let watch = await ClientWatch.start(context.channel)
        let request = GenerationRequest(
            prompt: prompt, maxNewTokens: maxTokens, sampling: try sampling(f),
            stopStrings: try f.stopStrings() + template.stopStrings, stopTokens: served.stopTokens,
            cancellation: watch.cancellation)
        let id = "chatcmpl-\(UUID().uuidString)"
        let created = Int(Date().timeIntervalSince1970)
        @Sendable func chunk(_ delta: [String: String], _ finish: FinishReason?) -> [String: Any] {
            [
                "id": id, "object": "chat.completion.chunk", "created": created, "model": modelName,
                "choices": [
                    ["index": 0, "delta": delta, "finish_reason": finish.map { $0.rawValue as Any } ?? NSNull()]
                ],
            ]
        }
        if stream {
            return eventStream([request], watch: watch, opening: chunk(["role": "assistant"], nil)) { _, text, finish in
                chunk(text.map { ["content": $0] } ?? [:], finish)
            }
        }
        defer { watch.stop() }
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

    /// Streams the text of `requests`, one after another, as server-sent events: `opening` if given,
    /// `chunk(index, text, nil)` for each piece of text, `chunk(index, nil, reason)` at each end, then
    /// `data: [DONE]`. A client that stops reading cancels the generation.
    private func eventStream(
        _ requests: [GenerationRequest], watch: ClientWatch, opening: [String: Any]? = nil,
        chunk: @escaping @Sendable (Int, String?, FinishReason?) -> [String: Any]
    ) -> Response {
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        if let opening { continuation.yield(sse(opening)) }
        continuation.onTermination = { _ in watch.cancellation.cancel() }
        let queue = self.queue
        Task {
            for (index, request) in requests.enumerated() {
                let r = await queue.submit(request) { continuation.yield(sse(chunk(index, $0, nil))) }
                guard r.finishReason != .cancelled else { break }
                continuation.yield(sse(chunk(index, nil, r.finishReason)))
            }
            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            continuation.finish()
            watch.stop()
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

/// Runs `body`, turning an error into its status and JSON error body (500 for one not an `APIError`).
private func respond(_ body: () async throws -> Response) async -> Response {
    do {
        return try await body()
    } catch let e as APIError {
        return errorResponse(e)
    } catch {
        return errorResponse(APIError(status: 500, message: "\(error)", param: nil))
    }
}
