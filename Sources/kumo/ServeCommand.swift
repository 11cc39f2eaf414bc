import ArgumentParser
import Foundation
import KumoServe

/// `kumo serve`: the OpenAI-compatible HTTP API over a model.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Serve a model over the OpenAI HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health).",
        discussion: """
            Requests are queued and run in batches of up to --slots sequences. SIGTERM or SIGINT stops the \
            server cleanly (exit status 0). --port 0 picks a free port; the port is printed on stderr.
            """)

    @OptionGroup var serving: ServingOptions

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port: Int = 8000

    @Option(help: "Sequences decoded together (key/value cache slots).")
    var slots: Int = 4

    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes: Int = 1 << 20

    @Option(help: "Largest max_tokens a request may ask for.")
    var maxNewTokens: Int = 1024

    @Option(help: "Model name reported by /v1/models (default: the file name of --model).")
    var name: String?

    func run() throws {
        guard slots >= 1, (0...65535).contains(port), maxBodyBytes >= 1, maxNewTokens >= 1 else {
            throw ValidationFailure("need --slots ≥ 1, --port in 0...65535, --max-body-bytes ≥ 1, --max-new-tokens ≥ 1")
        }
        let (served, generator) = try serving.load(slots: slots)
        var limits = ServerLimits()
        limits.maxBodyBytes = maxBodyBytes
        limits.maxNewTokens = maxNewTokens
        let server = OpenAIServer(
            served: served, generator: generator,
            modelName: name ?? URL(fileURLWithPath: serving.model).lastPathComponent, limits: limits)
        let host = self.host
        let port = self.port
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task {
            do {
                try await server.run(host: host, port: port) { printErr("listening on http://\(host):\($0)") }
            } catch {
                failure = error
            }
            done.signal()
        }
        done.wait()
        if let failure { throw ValidationFailure("serve: \(failure)") }
        printErr("server stopped")
    }
}
