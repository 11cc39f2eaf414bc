import ArgumentParser
import Foundation
import KumoRegistry

/// `kumo dashboard`: the run registry in a browser.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the run registry's dashboard: the run table, charts of each run, comparisons, a JSON API.",
        discussion: """
            Shows the runs of the registry `kumo runs` reads ($KUMO_HOME/registry.sqlite, or KUMO_REGISTRY). \
            Pages: / (the run table: sort, filter, group), /runs/N (charts; ?x=step|tokens|time, ?smoothing=0.6, \
            ?log=1), /compare?runs=1,2. JSON: /api/runs, /api/runs/N, /api/runs/N/metrics?from=K. Charts are \
            drawn on the server as SVG; nothing is loaded from the internet. SIGTERM or SIGINT stops it.
            """)

    @Option(help: "Port to listen on (0: any free port).")
    var port: Int = 8080

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port): need 0...65535") }
    }

    func run() throws {
        let server = DashboardServer(registry: try openRegistry())
        let (host, port) = (self.host, self.port)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task {
            do {
                try await server.run(host: host, port: port) { bound in
                    print("serving the dashboard on http://\(host):\(bound)/")
                    fflush(stdout)
                }
            } catch {
                failure = error
            }
            done.signal()
        }
        done.wait()
        if let failure { throw failure }
    }
}
