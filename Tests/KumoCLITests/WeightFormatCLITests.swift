import Foundation
import XCTest

/// `kumo generate --weights bf16` decodes on CPUs with AVX512_BF16 and is refused, naming the
/// missing units, on the others (never an illegal instruction); `--kv-cache` picks the cache's storage.
final class WeightFormatCLITests: XCTestCase {
    /// A tiny model trained for one step, in a fresh directory.
    private func tinyModel() throws -> String {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let train = try KumoProcess.run([
            "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=16",
            "--set", "train.steps=1", "--set", "train.micro_batch_size=1", "--set", "train.global_batch_size=1",
            "--run-dir", dir + "/run",
        ])
        XCTAssertEqual(train.status, 0, train.err)
        return dir + "/run/model.safetensors"
    }

    /// Whether /proc/cpuinfo lists AVX512_BF16 (and AVX-512F).
    private var cpuHasBF16Units: Bool {
        let info = FileManager.default.contents(atPath: "/proc/cpuinfo").map { String(decoding: $0, as: UTF8.self) }
        let flags = info?.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
        return flags.contains("avx512_bf16") && flags.contains("avx512f")
    }

    private func generate(_ model: String, _ options: [String]) throws -> (status: Int32, out: String, err: String) {
        try KumoProcess.run(
            ["generate", "--model", model, "--tokenizer", "byte", "--prompt", "x", "--max-new-tokens", "3"] + options)
    }

    func testBF16WeightsRunWhereTheUnitsAreAndAreRefusedElsewhere() throws {
        let generate = try generate(try tinyModel(), ["--weights", "bf16"])
        if cpuHasBF16Units {
            XCTAssertEqual(generate.status, 0, generate.err)
            // The random model's tokens lie beyond the byte tokenizer's pieces: count them, not their text.
            XCTAssertTrue(
                generate.err.contains("generated 3 tokens") && generate.err.contains("(bf16 weights"), generate.err)
        } else {
            XCTAssertNotEqual(generate.status, 0)
            XCTAssertTrue(generate.err.contains("needs a CPU with AVX512_BF16"), generate.err)
        }
    }

    /// --kv-cache auto is bf16 where the bf16 units are and fp32 elsewhere; fp32 and bf16 run anywhere
    /// (a bf16 cache is read by shifts, not bf16 instructions); another name is refused with the choices.
    func testKVCacheOptionSaysWhichStorageDecodesAndRefusesOthers() throws {
        let model = try tinyModel()
        let auto = try generate(model, [])
        XCTAssertEqual(auto.status, 0, auto.err)
        XCTAssertTrue(auto.err.contains(cpuHasBF16Units ? "bf16 KV cache" : "fp32 KV cache"), auto.err)
        for format in ["fp32", "bf16"] {
            let run = try generate(model, ["--kv-cache", format])
            XCTAssertEqual(run.status, 0, run.err)
            XCTAssertTrue(run.err.contains("generated 3 tokens, ") && run.err.contains("\(format) KV cache"), run.err)
        }
        let wrong = try generate(model, ["--kv-cache", "fp16"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.err.contains("--kv-cache fp16: expected auto, fp32 or bf16"), wrong.err)
    }
}
