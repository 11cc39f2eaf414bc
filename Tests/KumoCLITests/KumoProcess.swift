import Foundation
import XCTest

/// Runs the `kumo` executable built by `swift build -c release`, for end-to-end tests.
enum KumoProcess {
    /// The repository root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// ../shared/data beside the repository.
    static let sharedData = root.deletingLastPathComponent().appendingPathComponent("shared/data")

    /// Runs `kumo args` with `stdin` as its input; its exit status, standard output and standard error.
    static func run(_ args: [String], stdin: String = "") throws -> (status: Int32, out: String, err: String) {
        let binary = root.appendingPathComponent(".build/release/kumo")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(binary.path) is missing: run `swift build -c release` first (make test does)")
            return (-1, "", "")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let input = Pipe()
        let out = Pipe()
        let err = Pipe()
        p.standardInput = input
        p.standardOutput = out
        p.standardError = err
        try p.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        // Standard error is drained on another thread so that neither pipe can fill and block the child.
        let e = Drained()
        DispatchQueue.global().async {
            e.data = err.fileHandleForReading.readDataToEndOfFile()
            e.done.signal()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        e.done.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e.data, as: UTF8.self))
    }

    /// What a reader thread read, published to the waiting thread through `done`.
    private final class Drained: @unchecked Sendable {
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }

    /// A fresh directory removed when `test` ends.
    static func temporaryDirectory(for test: XCTestCase) throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}

extension KumoProcess {
    /// Starts `kumo args` with `environment` added, standard error into `stderrPath`; the caller waits or kills.
    static func start(_ args: [String], environment: [String: String] = [:], stderrPath: String) throws -> Process {
        let p = Process()
        p.executableURL = root.appendingPathComponent(".build/release/kumo")
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }
}
