import Foundation
import Hummingbird
import KumoInference
import NIOCore

/// The request context of the server's routes: Hummingbird's storage and the connection's channel,
/// which `watchClient` watches for the client hanging up.
public struct ServerContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on.
    public let channel: any Channel

    /// The context of a request on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// A generation's cancellation tied to a client connection, and the function that ends the watch.
struct ClientWatch: Sendable {
    /// Set when the client hangs up.
    let cancellation: GenerationCancellation
    /// Stops watching the connection (call it once the generation has ended).
    let stop: @Sendable () -> Void

    /// Watches `channel`: its closing, or the end of its input (Hummingbird keeps half-closed
    /// connections open, so a client that hangs up often only closes the server's input), cancels.
    static func start(_ channel: any Channel) async -> ClientWatch {
        let cancellation = GenerationCancellation()
        let name = "kumo-client-watch-\(UUID().uuidString)"
        let added = channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                HangUpHandler { cancellation.cancel() }, name: name, position: .first)
        }
        if (try? await added.get()) == nil || !channel.isActive { cancellation.cancel() }
        return ClientWatch(cancellation: cancellation) { channel.pipeline.removeHandler(name: name, promise: nil) }
    }
}

/// Calls `hungUp` when the channel's input ends or the channel closes; passes everything on.
private final class HangUpHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let hungUp: () -> Void

    init(_ hungUp: @escaping () -> Void) { self.hungUp = hungUp }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { hungUp() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        hungUp()
        context.fireChannelInactive()
    }
}

/// Turns Hummingbird's own errors into OpenAI-shaped JSON: an unknown path is 404, a known path
/// with the wrong method 405 (with `Allow`), any other `HTTPError` its status with the message.
struct OpenAIErrorMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    /// The method each route path ("/v1/models") answers.
    let methods: [String: HTTPRequest.Method]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let path = request.uri.path
            let what = "\(request.method) \(path)"
            guard error.status == .notFound else {
                return errorResponse(
                    APIError(status: error.status.code, message: error.body ?? "\(what): \(error.status)", param: nil))
            }
            guard let allowed = methods[path] else {
                return errorResponse(
                    APIError(
                        status: 404,
                        message: "Invalid URL (\(what)): the routes are "
                            + methods.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "),
                        param: nil))
            }
            var response = errorResponse(
                APIError(status: 405, message: "\(what) is not allowed: use \(allowed) \(path)", param: nil))
            response.headers[.allow] = allowed.rawValue
            return response
        }
    }
}

/// The status and JSON body of `error`.
func errorResponse(_ error: APIError) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(
        status: .init(code: error.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: error.body)))
}
