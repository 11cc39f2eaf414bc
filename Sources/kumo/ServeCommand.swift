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
            server: it takes no new connections and finishes the running requests (exit status 0); if they are \
            not done within --shutdown-timeout seconds it exits with status 1, and a second signal makes it exit \
            at once (status 128 + the signal's number). --port 0 picks a free port; the port is printed on stderr.
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

    @Option(help: "Most prompts one /v1/completions request may hold.")
    var maxPrompts: Int = 64

    @Option(
        name: [.customLong("served-model-name"), .customLong("name")],
        help:
            "Model name reported by /v1/models; a request naming another `model` is refused (404). Default: the file name of --model."
    )
    var servedModelName: String?

    @Option(help: "Seconds the running requests may take to finish after SIGTERM or SIGINT.")
    var shutdownTimeout: Double = 30

    func run() throws {
        guard slots >= 1, (0...65535).contains(port), maxBodyBytes >= 1, maxNewTokens >= 1, maxPrompts >= 1,
            shutdownTimeout >= 0, shutdownTimeout.isFinite
        else {
            throw ValidationFailure(
                "need --slots ≥ 1, --port in 0...65535, --max-body-bytes ≥ 1, --max-new-tokens ≥ 1, --max-prompts ≥ 1, "
                    + "--shutdown-timeout ≥ 0")
        }
        let (served, generator) = try serving.load(slots: slots)
        var limits = ServerLimits()
        limits.maxBodyBytes = maxBodyBytes
        limits.maxNewTokens = maxNewTokens
        limits.maxPrompts = maxPrompts
        let server = OpenAIServer(
            served: served, generator: generator,
            modelName: servedModelName ?? URL(fileURLWithPath: serving.model).lastPathComponent, limits: limits)
        let host = self.host
        let port = self.port
        let signals = boundShutdown(seconds: shutdownTimeout)
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
        for source in signals { source.cancel() }
        if let failure { throw ValidationFailure("serve: \(failure)") }
        printErr("server stopped")
    }
}

/// Bounds the graceful shutdown that Hummingbird starts at SIGTERM or SIGINT: if it has not ended
/// `seconds` after the first signal, or when a second signal comes, the process exits at once.
/// Returns the signal sources (cancel them once the server has stopped).
private func boundShutdown(seconds: Double) -> [any DispatchSourceSignal] {
    let queue = DispatchQueue(label: "kumo-shutdown")
    let signalled = SignalCount()
    return [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler {
            // _exit: the generation thread may be inside OpenBLAS, whose exit handlers would wait for it.
            guard signalled.increment() == 1 else {
                printErr("second signal: exiting now, running requests unfinished")
                _exit(128 + number)
            }
            printErr("stopping: finishing the running requests (at most \(seconds) s; a second signal exits at once)")
            queue.asyncAfter(deadline: .now() + seconds) {
                printErr("shutdown timeout: running requests not finished after \(seconds) s; exiting")
                _exit(1)
            }
        }
        source.resume()
        return source
    }
}

/// How many shutdown signals have come; only touched on the shutdown queue.
private final class SignalCount: @unchecked Sendable {
    private var count = 0

    /// Counts one more signal and returns the count.
    func increment() -> Int {
        count += 1
        return count
    }
}
