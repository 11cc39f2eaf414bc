import Foundation
import XCTest

/// `kumo generate --weights bf16` decodes on CPUs with AVX512_BF16 and is refused, naming the
/// missing units, on the others (never an illegal instruction).
final class WeightFormatCLITests: XCTestCase {
    func testBF16WeightsRunWhereTheUnitsAreAndAreRefusedElsewhere() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let train = try KumoProcess.run([
            "train", "--set", "model.preset=tiny", "--set", "data.synthetic=true", "--set", "train.seq_length=16",
            "--set", "train.steps=1", "--set", "train.micro_batch_size=1", "--set", "train.global_batch_size=1",
            "--run-dir", dir + "/run",
        ])
        XCTAssertEqual(train.status, 0, train.err)
        let generate = try KumoProcess.run([
            "generate", "--model", dir + "/run/model.safetensors", "--tokenizer", "byte", "--prompt", "x",
            "--max-new-tokens", "3",
            "--weights", "bf16",
        ])
        let info = FileManager.default.contents(atPath: "/proc/cpuinfo").map { String(decoding: $0, as: UTF8.self) }
        let flags = info?.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
        if flags.contains("avx512_bf16") && flags.contains("avx512f") {
            XCTAssertEqual(generate.status, 0, generate.err)
            // The random model's tokens lie beyond the byte tokenizer's pieces: count them, not their text.
            XCTAssertTrue(generate.err.contains("generated 3 tokens") && generate.err.contains("(bf16)"), generate.err)
        } else {
            XCTAssertNotEqual(generate.status, 0)
            XCTAssertTrue(generate.err.contains("needs a CPU with AVX512_BF16"), generate.err)
        }
    }
}
