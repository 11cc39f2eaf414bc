import Foundation
import XCTest

@testable import KumoTrain

/// A tiny model and run directory for checkpoint and spike-guard tests.
enum CheckpointFixture {
    static func config(_ overrides: [String] = []) throws -> RunConfig {
        try RunConfig.load(
            path: nil,
            overrides: [
                "model.vocab_size=97", "model.hidden_size=32", "model.intermediate_size=48",
                "model.num_hidden_layers=2", "model.num_attention_heads=4", "model.num_key_value_heads=2",
                "model.max_position_embeddings=64", "data.synthetic=true", "train.seq_length=16", "train.threads=1",
                "train.micro_batch_size=2", "optim.warmup_steps=2", "optim.lr=3e-3",
            ] + overrides)
    }

    static func trainer(_ c: RunConfig) throws -> Trainer {
        try Trainer(config: c, stream: try TrainingData.make(c).stream, peakGFLOPs: 50)
    }

    /// A fresh directory removed when `test` ends.
    static func directory(for test: XCTestCase) throws -> String {
        let dir = NSTemporaryDirectory() + "kumo-ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Rewrites a checkpoint's manifest through `change` and records its new CRC in COMPLETE, as a
    /// hostile writer who knows the format would.
    static func rewriteManifest(_ dir: String, _ change: (inout CheckpointManifest) -> Void) throws {
        var m = try JSONDecoder().decode(
            CheckpointManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json")))
        change(&m)
        try writeManifestText(dir, Array(try JSONEncoder().encode(m)))
    }

    /// Replaces manifest.json by `bytes` and records their CRC in COMPLETE.
    static func writeManifestText(_ dir: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
        let crc = bytes.withUnsafeBytes { CheckpointFile.crc32(0, $0.baseAddress!, $0.count) }
        try "manifest_crc32 \(crc)\n".write(toFile: dir + "/COMPLETE", atomically: true, encoding: .utf8)
    }

    /// Replaces the shard by `bytes` and fixes its size and CRC in the manifest.
    static func rewriteShard(_ dir: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/rank-00000.bin"))
        let crc = bytes.withUnsafeBytes { CheckpointFile.crc32(0, $0.baseAddress!, $0.count) }
        try rewriteManifest(dir) {
            $0.files[0].bytes = bytes.count
            $0.files[0].crc32 = crc
        }
    }

    /// Copies directory `from` to a new `to`.
    static func copy(_ from: String, _ to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }
}
