import Foundation
import KumoCore
import XCTest

@testable import KumoInterop

/// Mutation-based property tests: readers fed mutated valid files (fixed seed) throw or succeed,
/// never crash, and never allocate far beyond the file's size.
final class ReaderFuzzTests: XCTestCase {
    private let iterations = 400

    /// Peak resident memory so far, in bytes.
    private func peakRSS() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    /// Applies 1-4 random mutations: byte flips, byte overwrites with extreme values, truncation,
    /// insertion, and 8-byte little-endian integers overwritten with huge or small values.
    private func mutate(_ seed: Data, _ rng: inout SeededRandom) -> Data {
        var d = seed
        func pick(_ n: Int) -> Int { Int(rng.uniform() * Double(n)) }
        for _ in 0..<(1 + pick(4)) where !d.isEmpty {
            let at = d.startIndex + pick(d.count)
            switch pick(6) {
            case 0: d[at] ^= UInt8(1 << pick(8))
            case 1: d[at] = [0x00, 0xFF, 0x7F, 0x80][pick(4)]
            case 2: d = d.prefix(pick(d.count))
            case 3: d.insert(UInt8(pick(256)), at: at)
            case 4:
                let v: UInt64 = [UInt64.max, 1 << 62, 1 << 40, 0, 1 << 20][pick(5)]
                for k in 0..<8 where at + k < d.endIndex { d[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            default: d[at] = UInt8(pick(256))
            }
        }
        return d
    }

    private func fuzz(seed: Data, name: String, _ read: (Data) throws -> Void) {
        var rng = SeededRandom(seed: 2026)
        try? read(seed)
        let before = peakRSS()
        var accepted = 0
        for _ in 0..<iterations {
            let input = mutate(seed, &rng)
            if (try? read(input)) != nil { accepted += 1 }
        }
        let growth = peakRSS() - before
        print("\(name): \(iterations) mutated inputs, \(accepted) accepted, \(iterations - accepted) rejected")
        XCTAssertLessThan(growth, 256 << 20, "\(name): peak memory grew by \(growth) bytes")
        XCTAssertLessThan(accepted, iterations, "\(name): no mutation was rejected; the mutator is not mutating")
    }

    func testMutatedSafeTensorsFilesNeverCrash() {
        let seed = SafeTensorsBytes.file([
            ("a", "F32", [2, 2], Array(repeating: 0x3F, count: 16)), ("b", "F16", [3], [0, 0x3C, 0, 0x3C, 0, 0x3C]),
            ("c", "BF16", [1], [0x80, 0x3F]),
        ])
        fuzz(seed: seed, name: "safetensors") { data in
            let f = try SafeTensorsFile(data: data, path: "fuzz")
            for name in f.entries.keys { _ = try? f.floats(name) }
        }
    }

    func testMutatedGGUFFilesNeverCrash() {
        fuzz(seed: TinyLlamaGGUF.build(tied: true), name: "GGUF") { data in
            let f = try GGUFFile(data: data, path: "fuzz")
            for name in f.tensors.keys { _ = try f.floats(name) }
            _ = try GGUFLlama.load(f)
        }
    }

    func testMutatedConfigJSONNeverCrashes() {
        let seed = Data(
            #"{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-05,"rope_theta":10000.0,"vocab_size":97,"tie_word_embeddings":false,"max_position_embeddings":2048}"#
                .utf8)
        fuzz(seed: seed, name: "config.json") { data in _ = try HFConfig.parse(data, path: "fuzz") }
    }

    /// transformers' Mixtral directory with fused experts, one of its two files mutated, loaded whole:
    /// a config asking for more experts or larger ones, or tensors whose shapes or ranges are off, is
    /// refused before the model is allocated.
    private func fuzzMixtral(mutating file: String) throws {
        let dir = try Reference.temporaryDirectory(for: self)
        let fm = FileManager.default
        for name in ["config.json", "model.safetensors"] {
            try fm.copyItem(atPath: Reference.mixtralFused + "/" + name, toPath: dir + "/" + name)
        }
        let seed = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))
        fuzz(seed: seed, name: "Mixtral \(file)") { data in
            try data.write(to: URL(fileURLWithPath: dir + "/" + file))
            _ = try HFCheckpoint.load(from: dir)
        }
    }

    func testMutatedMixtralConfigNeverCrashesTheLoader() throws { try fuzzMixtral(mutating: "config.json") }

    func testMutatedFusedMixtralTensorsNeverCrashTheLoader() throws { try fuzzMixtral(mutating: "model.safetensors") }
}
