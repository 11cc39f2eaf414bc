import Foundation
import XCTest

/// A throwaway PostgreSQL server for the tests, started once per test process: `initdb` into a
/// temporary directory (as user `postgres` when running as root, which PostgreSQL refuses to be),
/// `pg_ctl start` on a free local port, stopped when the process exits. Needs Debian's `postgresql`
/// (`make deps` installs it); a missing server fails the tests, it does not skip them.
final class PostgresServer: @unchecked Sendable {
    let port: Int
    let directory: String
    private let bin: String
    private var databases = 0
    private let lock = NSLock()

    nonisolated(unsafe) private static var server: PostgresServer?
    private static let startLock = NSLock()

    static func shared() throws -> PostgresServer {
        try startLock.withLock {
            if let server { return server }
            let s = try PostgresServer()
            server = s
            atexit { PostgresServer.server?.stop() }
            return s
        }
    }

    private init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.compactMap(Int.init).max() else {
            throw TestSetupError("PostgreSQL is not installed (/usr/lib/postgresql): run `make deps`")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        directory = NSTemporaryDirectory() + "kumo-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try Self.freePort()
        if getuid() == 0 { try Self.shell("chown postgres \(directory)") }
        try asServerUser("\(bin)/initdb -D \(directory)/data -A trust -U postgres --no-sync >/dev/null")
        try asServerUser(
            "\(bin)/pg_ctl -D \(directory)/data -l \(directory)/log -w -o '-p \(port) -k \(directory) "
                + "-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' start >/dev/null")
    }

    /// A new, empty database; its URL.
    func createDatabase() throws -> String {
        let name = lock.withLock {
            databases += 1
            return "kumo_test_\(databases)"
        }
        try Self.shell("\(bin)/psql -q -h 127.0.0.1 -p \(port) -U postgres -c 'CREATE DATABASE \(name)' postgres")
        return "postgresql://postgres@127.0.0.1:\(port)/\(name)"
    }

    func stop() {
        try? asServerUser("\(bin)/pg_ctl -D \(directory)/data -m immediate stop >/dev/null")
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func asServerUser(_ command: String) throws {
        try Self.shell(getuid() == 0 ? "runuser -u postgres -- sh -c \"\(command)\"" : command)
    }

    /// Runs `command` with sh (`system`, which waits for sh alone: Foundation's `Process` also waits for
    /// the descriptors the server `pg_ctl` starts inherits); throws with its output when it fails.
    private static func shell(_ command: String) throws {
        let log = NSTemporaryDirectory() + "kumo-pg-command-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = system("(\(command)) > \(log) 2>&1 < /dev/null")
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestSetupError("`\(command)` failed (\(status)): \(text)")
        }
    }

    /// A TCP port nothing listens on now.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, length) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard bound else { throw TestSetupError("cannot find a free port for PostgreSQL") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A test-setup failure (not a skip: CI must run these tests).
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
