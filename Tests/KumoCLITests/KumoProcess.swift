import Foundation
import XCTest

/// Runs the `kumo` executable built by `swift build -c release`, for end-to-end tests: alone, or
/// as several ranks under Open MPI's `mpirun`.
enum KumoProcess {
    /// The repository root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// ../shared/data beside the repository.
    static let sharedData = root.deletingLastPathComponent().appendingPathComponent("shared/data")
    /// The release binary.
    static let binary = root.appendingPathComponent(".build/release/kumo").path
    /// `KUMO_HOME` of every process a test starts (unless the test sets its own): the runs the tests
    /// train go to this process's own registry, not to the user's ~/.kumo.
    static let home = NSTemporaryDirectory() + "kumo-cli-home-\(getpid())"

    /// Runs `kumo args` with `stdin` as its input; its exit status, standard output and standard error.
    /// With a `timeout` in seconds, a process still running then is terminated (its status is then
    /// SIGTERM's), so a command that should have exited fails its test instead of hanging it.
    static func run(
        _ args: [String], stdin: String = "", environment: [String: String] = [:], timeout: Double? = nil
    ) throws -> (status: Int32, out: String, err: String) {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            XCTFail("\(binary) is missing: run `swift build -c release` first (make test does)")
            return (-1, "", "")
        }
        let p = try Launched(executable: binary, args, stdin: stdin, environment: environment)
        if let timeout { p.terminate(after: timeout) }
        return p.finish()
    }

    /// `mpirun` options for `ranks` ranks of `kumo` on this machine, oversubscribed (more ranks than cores).
    static func mpirunArgs(ranks: Int) -> [String] { ["--oversubscribe", "-np", "\(ranks)", binary] }

    /// Starts `mpirun args` (allowed to run as root, as in containers) with `environment` added,
    /// without waiting for it.
    static func startMPI(_ args: [String], environment: [String: String] = [:]) throws -> Launched {
        try Launched(
            executable: "/usr/bin/mpirun", args,
            environment: environment.merging(["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]) {
                $1
            })
    }

    /// Runs `kumo args` as `ranks` ranks under mpirun; its exit status, standard output and standard error.
    static func runMPI(ranks: Int, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try startMPI(mpirunArgs(ranks: ranks) + args).finish()
    }

    /// A fresh directory removed when `test` ends.
    static func temporaryDirectory(for test: XCTestCase) throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// A started process whose standard output and error are collected as they arrive.
    final class Launched: @unchecked Sendable {
        private let process = Process()
        private let lock = NSLock()
        private var out = Data()
        private var err = Data()
        private let outDone = DispatchSemaphore(value: 0)
        private let errDone = DispatchSemaphore(value: 0)

        init(executable: String, _ args: [String], stdin: String = "", environment: [String: String] = [:]) throws {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = args
            process.environment = ProcessInfo.processInfo.environment.merging(["KUMO_HOME": KumoProcess.home]) { $1 }
                .merging(environment) { $1 }
            let input = Pipe()
            let o = Pipe()
            let e = Pipe()
            process.standardInput = input
            process.standardOutput = o
            process.standardError = e
            try process.run()
            // Both pipes are drained on other threads so that neither can fill and block the child.
            drain(o.fileHandleForReading, into: \.out, done: outDone)
            drain(e.fileHandleForReading, into: \.err, done: errDone)
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }

        private func drain(
            _ handle: FileHandle, into keyPath: ReferenceWritableKeyPath<Launched, Data>, done: DispatchSemaphore
        ) {
            DispatchQueue.global().async {
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    self.lock.withLock { self[keyPath: keyPath].append(chunk) }
                }
                done.signal()
            }
        }

        /// Standard error received so far.
        var standardError: String { lock.withLock { String(decoding: err, as: UTF8.self) } }

        /// Waits until standard error matches `pattern` (a regular expression); its first capture group, if any.
        func waitForError(matching pattern: String, timeout: Double) -> String? {
            let regex = try! NSRegularExpression(pattern: pattern)
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let text = standardError
                if let m = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                    return m.numberOfRanges > 1 ? Range(m.range(at: 1), in: text).map { String(text[$0]) } : ""
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return nil
        }

        /// Terminates the process if it is still running `seconds` from now.
        func terminate(after seconds: Double) {
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [process] in
                if process.isRunning { process.terminate() }
            }
        }

        /// Waits for exit; the exit status, standard output and standard error.
        func finish() -> (status: Int32, out: String, err: String) {
            outDone.wait()
            errDone.wait()
            process.waitUntilExit()
            return lock.withLock {
                (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
            }
        }
    }
}

extension KumoProcess {
    /// Starts `kumo args` with `environment` added, standard error into `stderrPath`; the caller waits or kills.
    static func start(_ args: [String], environment: [String: String] = [:], stderrPath: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(["KUMO_HOME": home]) { $1 }
            .merging(environment) { $1 }
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }
}
