import Foundation
import KumoCore

/// A value bound to or read from a SQL statement: the four types the registry's schema uses.
public enum SQLValue: Equatable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let v): return v
        }
    }

    public var int: Int? {
        switch self {
        case .integer(let v): return Int(v)
        case .real(let v): return v.isFinite ? Int(v) : nil
        case .text(let v): return Int(v)
        case .null: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .real(let v): return v
        case .text(let v): return Double(v)
        case .null: return nil
        }
    }

    public var string: String? {
        if case .null = self { return nil }
        return description
    }

    /// `.null` for nil, else the value.
    public init(_ v: Int?) { self = v.map { .integer(Int64($0)) } ?? .null }
    public init(_ v: Double?) { self = v.map { $0.isFinite ? .real($0) : .null } ?? .null }
    public init(_ v: String?) { self = v.map { .text($0) } ?? .null }
}

/// One result row, by column name.
public typealias SQLRow = [String: SQLValue]

/// The SQL flavours the registry speaks. Statements are written once, with `?` placeholders; the
/// schema's few differences (auto-increment keys, locking for migrations) go through the dialect.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgresql
}

/// Runs statements inside one transaction.
public protocol SQLExecutor {
    /// Runs one statement with `?` placeholders bound in order to `parameters`; returns its rows.
    @discardableResult
    func execute(_ sql: String, _ parameters: [SQLValue]) throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    public func execute(_ sql: String) throws -> [SQLRow] { try execute(sql, []) }
}

/// A registry database: SQLite (`SQLiteDatabase`, GRDB) or PostgreSQL (`PostgresDatabase`, PostgresNIO).
public protocol SQLDatabase: AnyObject {
    var dialect: SQLDialect { get }
    /// Where the database is, for messages (a file path, or a URL without its password).
    var location: String { get }
    /// Runs `body` in one transaction that writes: committed when it returns, rolled back when it throws.
    @discardableResult
    func write<T>(_ body: (any SQLExecutor) throws -> T) throws -> T
    /// Runs `body` on a consistent snapshot.
    func read<T>(_ body: (any SQLExecutor) throws -> T) throws -> T
}

/// A registry that cannot be opened, migrated, read or written; the message names the database.
public struct RegistryError: UserFacingError {
    public let description: String
    public init(_ description: String) { self.description = description }
}
