import Foundation
import GRDB

/// The embedded registry: one SQLite file in WAL mode (readers never block the writer), opened by
/// every `kumo train` of the machine at once; a writer waits up to `busyTimeout` for another's lock.
public final class SQLiteDatabase: SQLDatabase {
    public let dialect = SQLDialect.sqlite
    public let location: String
    private let pool: DatabasePool

    public init(path: String, busyTimeout: TimeInterval = 30) throws {
        location = path
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw RegistryError("cannot open the run registry \(path): \(error)")
        }
    }

    public func write<T>(_ body: (any SQLExecutor) throws -> T) throws -> T {
        try pool.write { db in try body(Executor(db: db)) }
    }

    public func read<T>(_ body: (any SQLExecutor) throws -> T) throws -> T {
        try pool.read { db in try body(Executor(db: db)) }
    }

    private struct Executor: SQLExecutor {
        let db: Database

        func execute(_ sql: String, _ parameters: [SQLValue]) throws -> [SQLRow] {
            let arguments = StatementArguments(parameters.map(Self.databaseValue))
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                var out = SQLRow()
                for (column, value) in row { out[column] = Self.sqlValue(value) }
                return out
            }
        }

        private static func databaseValue(_ v: SQLValue) -> DatabaseValue {
            switch v {
            case .null: return .null
            case .integer(let x): return x.databaseValue
            case .real(let x): return x.databaseValue
            case .text(let x): return x.databaseValue
            }
        }

        private static func sqlValue(_ v: DatabaseValue) -> SQLValue {
            switch v.storage {
            case .null: return .null
            case .int64(let x): return .integer(x)
            case .double(let x): return .real(x)
            case .string(let x): return .text(x)
            case .blob(let x): return .text(String(decoding: x, as: UTF8.self))
            }
        }
    }
}
