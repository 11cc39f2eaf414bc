import Foundation
import Hummingbird
import KumoCore
import NIOCore

/// The dashboard's web server over a run registry: the pages (`/` the run table, `/runs/N`,
/// `/compare?runs=1,2`), each chart as an SVG file (`/runs/N/chart/<id>.svg`,
/// `/compare/chart/<id>.svg?runs=1,2`, with `x=`, `smoothing=`, `log=`) and the JSON API
/// (`/api/runs`, `/api/runs/N`, `/api/runs/N/metrics?from=K`).
public struct DashboardServer: Sendable {
    /// The registry; GRDB's pool (and each `SQLDatabase`) serializes what needs it, so requests share it.
    private struct Shared: @unchecked Sendable { let registry: RunRegistry }
    private let shared: Shared
    private var registry: RunRegistry { shared.registry }

    /// A server over `registry`.
    public init(registry: RunRegistry) { shared = Shared(registry: registry) }

    /// Serves on host:port until SIGTERM or SIGINT; `onRunning` receives the bound port. A port in use
    /// is refused with a `DashboardError` that names it.
    public func run(host: String, port: Int, onRunning: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(
            router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "kumo-dashboard"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) })
        do {
            try await app.runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw DashboardError(
                "port \(port) on \(host) is in use (another dashboard or server?): pick another with --port "
                    + "(--port 0 takes any free port)")
        }
    }

    /// The routes. Each handler reads the registry on a dispatch thread (`answer`): its calls block,
    /// and PostgresNIO's must not be waited for on an event loop or the few threads of Swift's pool.
    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { request, _ in
            let query = DashboardQuery(request.uri.query)
            return await answer(.page) { try runTable(query) }
        }
        router.get("/runs/:number") { request, context in
            let (number, query) = (context.parameters.get("number"), DashboardQuery(request.uri.query))
            return await answer(.page) { try runPage(try runNumber(number), query) }
        }
        router.get("/runs/:number/chart/:file") { request, context in
            let (number, query, path) = (
                context.parameters.get("number"), DashboardQuery(request.uri.query), request.uri.path
            )
            return await answer(.page) { try chartFile(try chartID(path), [try runNumber(number)], query) }
        }
        router.get("/compare") { request, _ in
            let query = DashboardQuery(request.uri.query)
            return await answer(.page) { try comparePage(query) }
        }
        router.get("/compare/chart/:file") { request, _ in
            let (query, path) = (DashboardQuery(request.uri.query), request.uri.path)
            return await answer(.page) { try chartFile(try chartID(path), query.runNumbers, query) }
        }
        router.get("/api/runs") { request, _ in
            let query = DashboardQuery(request.uri.query)
            return await answer(.json) { try runsJSON(query) }
        }
        router.get("/api/runs/:number") { _, context in
            let number = context.parameters.get("number")
            return await answer(.json) { try encoded(try detail(try runNumber(number))) }
        }
        router.get("/api/runs/:number/metrics") { request, context in
            let (number, from) = (context.parameters.get("number"), DashboardQuery(request.uri.query)["from"])
            return await answer(.json) { try metricsJSON(try runNumber(number), from: from) }
        }
        return router
    }

    // MARK: pages

    private func runTable(_ query: DashboardQuery) throws -> Response {
        let runs = try registry.runs()
        var configValues: [Int: [String: String]] = [:]
        if let key = query["group"], key != "experiment" {
            for r in runs { configValues[r.number] = try registry.run(r.number)?.configValues }
        }
        let table = RunTable(runs: runs, configValues: configValues, query: query)
        return response(DashboardHTML.page("Kumo runs", table.html()), type: "text/html; charset=utf-8")
    }

    private func runPage(_ number: Int, _ query: DashboardQuery) throws -> Response {
        let (detail, run, lines) = try charted(number)
        return response(RunPages.run(detail, run, lines: lines, query: query), type: "text/html; charset=utf-8")
    }

    private func comparePage(_ query: DashboardQuery) throws -> Response {
        let loaded = try compared(query.runNumbers).map(charted)
        let html = RunPages.compare(
            loaded.map(\.0), loaded.map(\.1),
            lines: Dictionary(loaded.map { ($0.0.summary.number, $0.2) }) { $1 }, query: query)
        return response(html, type: "text/html; charset=utf-8")
    }

    private func chartFile(_ id: String, _ numbers: [Int], _ query: DashboardQuery) throws -> Response {
        let runs = try compared(numbers).map { try charted($0).1 }
        guard let chart = DashboardCharts.chart(id, runs: runs, options: query.chartOptions) else {
            throw HTTPFailure(
                404, "no chart \(id): the charts are \(DashboardCharts.ids(runs).joined(separator: ", "))")
        }
        return response(ChartSVG.render(chart), type: "image/svg+xml")
    }

    // MARK: JSON API

    private func runsJSON(_ query: DashboardQuery) throws -> Response {
        let status = try query["status"].map { s in
            guard let status = RunStatus(rawValue: s) else {
                throw HTTPFailure(
                    400, "status=\(s): one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return status
        }
        return try encoded(try registry.runs(RunFilter(experiment: query["experiment"], status: status)))
    }

    /// The metrics lines from line `from` (default 0) on, as a JSON array holding each line's text as
    /// written; a line that is not a JSON object (none should be) stands as `null`, so positions still count.
    private func metricsJSON(_ number: Int, from: String?) throws -> Response {
        guard let first = Int(from ?? "0"), first >= 0 else {
            throw HTTPFailure(400, "from=\(from ?? ""): a line number, 0 or more")
        }
        _ = try detail(number)
        let lines = try registry.metricsLines(run: number, from: first).map { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any] ? line : "null"
        }
        return response("[" + lines.joined(separator: ",") + "]", type: "application/json")
    }

    // MARK: helpers

    private func detail(_ number: Int) throws -> RunDetail {
        guard let detail = try registry.run(number) else {
            throw HTTPFailure(404, "no run \(number) in \(registry.database.location)")
        }
        return detail
    }

    /// Run `number` with its metrics, and the number of its metrics lines.
    private func charted(_ number: Int) throws -> (RunDetail, ChartedRun, Int) {
        let detail = try detail(number)
        let lines = try registry.metricsLines(run: number)
        return (
            detail, ChartedRun(summary: detail.summary, metrics: RunMetrics(lines: lines, summary: detail.summary)),
            lines.count
        )
    }

    /// The most runs one page or chart compares.
    static let maxCompared = 20

    /// `numbers`, checked to be 1 to `maxCompared` runs.
    private func compared(_ numbers: [Int]) throws -> [Int] {
        guard (1...Self.maxCompared).contains(numbers.count) else {
            throw HTTPFailure(
                400,
                "compare 1 to \(Self.maxCompared) runs (\(numbers.count) given): ?runs=1,2 "
                    + "(or tick them on the run table)")
        }
        return numbers
    }

    /// The run number of a path's `:number`.
    private func runNumber(_ text: String?) throws -> Int {
        guard let number = text.flatMap({ Int($0) }) else {
            throw HTTPFailure(404, "no run \(text ?? ""): runs are numbered 1, 2, ...")
        }
        return number
    }

    /// The chart id of the path's last component, `<id>.svg`.
    private func chartID(_ path: String) throws -> String {
        let last = path.split(separator: "/").last.map(String.init) ?? ""
        let file = last.removingPercentEncoding ?? last
        guard file.hasSuffix(".svg") else { throw HTTPFailure(404, "\(file): chart files end in .svg") }
        return String(file.dropLast(4))
    }

    private func encoded<T: Encodable>(_ value: T) throws -> Response {
        response(String(decoding: try JSONEncoder.registry.encode(value), as: UTF8.self), type: "application/json")
    }
}

/// The dashboard server could not start (its port is in use); the message says what to do.
public struct DashboardError: UserFacingError {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A request the dashboard refuses: its HTTP status and what was wrong.
struct HTTPFailure: Error {
    let status: Int
    let message: String
    init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// A response of `type` holding `body`.
private func response(_ body: String, type: String, status: Int = 200) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = type
    headers[.cacheControl] = "no-store"
    return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
}

/// How a route reports a refusal or failure: as JSON `{"error": ...}` (the API) or as a short HTML page.
private enum ErrorStyle { case json, page }

/// The response `body` makes, run on a dispatch thread; a refusal or failure in `style` with its status.
private func answer(_ style: ErrorStyle, _ body: @escaping @Sendable () throws -> Response) async -> Response {
    let result = await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: Result(catching: body)) }
    }
    let error: any Error
    switch result {
    case .success(let response): return response
    case .failure(let failure): error = failure
    }
    let (status, message) = describe(error)
    switch style {
    case .json:
        let data =
            (try? JSONSerialization.data(withJSONObject: ["error": message], options: .withoutEscapingSlashes))
            ?? Data()
        return response(String(decoding: data, as: UTF8.self), type: "application/json", status: status)
    case .page:
        let html = DashboardHTML.page("error \(status)", "<h1>error \(status)</h1><p>\(escapeXML(message))</p>")
        return response(html, type: "text/html; charset=utf-8", status: status)
    }
}

/// The HTTP status and message of `error`: an `HTTPFailure`'s, else 500 and the error's description.
private func describe(_ error: any Error) -> (Int, String) {
    if let failure = error as? HTTPFailure { return (failure.status, failure.message) }
    return (500, "\(error)")
}
