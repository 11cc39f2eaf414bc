import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// A team's registry in PostgreSQL, named by `KUMO_REGISTRY=postgresql://user[:password]@host[:port]/database`
/// (or `?host=/socket/dir` for a Unix socket), through one PostgresNIO connection. Calls block the
/// calling thread (never an event-loop thread) and are serialised, one transaction at a time.
public final class PostgresDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.postgresql
    public let location: String
    private let connection: PostgresConnection
    private let logger = Logger(label: "kumo.registry")
    private let lock = NSLock()

    public init(url: String) throws {
        let configuration = try Self.configuration(url: url)
        location = configuration.printable
        do {
            connection = try PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration.connection, id: 1,
                logger: logger
            ).wait()
        } catch {
            throw RegistryError("cannot connect to the run registry \(location): \(Self.describe(error))")
        }
    }

    deinit { try? connection.close().wait() }

    public func write<T>(_ body: (any SQLExecutor) throws -> T) throws -> T { try transaction(body) }

    public func read<T>(_ body: (any SQLExecutor) throws -> T) throws -> T { try transaction(body) }

    private func transaction<T>(_ body: (any SQLExecutor) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let executor = Executor(database: self)
        try executor.execute("BEGIN")
        do {
            let result = try body(executor)
            try executor.execute("COMMIT")
            return result
        } catch {
            _ = try? executor.execute("ROLLBACK")
            throw error
        }
    }

    private struct Executor: SQLExecutor {
        let database: PostgresDatabase

        func execute(_ sql: String, _ parameters: [SQLValue]) throws -> [SQLRow] {
            var binds = PostgresBindings(capacity: parameters.count)
            for p in parameters {
                switch p {
                case .null: binds.appendNull()
                case .integer(let v): binds.append(v)
                case .real(let v): binds.append(v)
                case .text(let v): binds.append(v)
                }
            }
            let query = PostgresQuery(unsafeSQL: PostgresDatabase.numberedPlaceholders(sql), binds: binds)
            do {
                let result = try database.connection.query(query, logger: database.logger).wait()
                return try result.rows.map { row in
                    var out = SQLRow()
                    for cell in row { out[cell.columnName] = try PostgresDatabase.value(cell) }
                    return out
                }
            } catch {
                throw RegistryError("run registry \(database.location): \(PostgresDatabase.describe(error))")
            }
        }
    }

    /// `sql` with its `?` placeholders (outside quotes) numbered `$1`, `$2`, ... as PostgreSQL wants them.
    static func numberedPlaceholders(_ sql: String) -> String {
        var out = ""
        var n = 0
        var quoted = false
        for c in sql {
            if c == "'" { quoted.toggle() }
            if c == "?" && !quoted {
                n += 1
                out += "$\(n)"
            } else {
                out.append(c)
            }
        }
        return out
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .float4, .float8, .numeric: return .real(try cell.decode(Double.self))
        case .void: return .null
        default: return .text(try cell.decode(String.self))
        }
    }

    /// PSQLError hides the server's message unless asked for it.
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            return "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
        }
        return "\(error)"
    }

    /// The connection settings of a `postgresql://` URL, and the URL without its password.
    static func configuration(url: String) throws -> (connection: PostgresConnection.Configuration, printable: String) {
        guard let c = URLComponents(string: url), c.scheme == "postgresql" || c.scheme == "postgres" else {
            throw RegistryError(
                "KUMO_REGISTRY=\(url): expected postgresql://user[:password]@host[:port]/database")
        }
        let user = c.user ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        let database = c.path.count > 1 ? String(c.path.dropFirst()) : user
        var printable = c
        printable.password = nil
        let socket = c.queryItems?.first { $0.name == "host" }?.value
        if let socket, socket.hasPrefix("/") {
            let port = c.port ?? 5432
            return (
                .init(
                    unixSocketPath: "\(socket)/.s.PGSQL.\(port)", username: user, password: c.password,
                    database: database),
                printable.string ?? url
            )
        }
        return (
            .init(
                host: c.host ?? "localhost", port: c.port ?? 5432, username: user, password: c.password,
                database: database, tls: .disable),
            printable.string ?? url
        )
    }
}
