import Foundation
import XCTest

/// `kumo logits/convert/generate/eval/serve` on transformers' random Mixtral
/// (Tests/KumoInteropTests/Golden, from `scripts/hf_reference.py mixtral-fixture`).
final class MixtralCLITests: XCTestCase {
    private let golden = KumoProcess.root.appendingPathComponent("Tests/KumoInteropTests/Golden")
    private var mixtral: String { golden.appendingPathComponent("mixtral-tiny").path }

    /// The F32 tensor `name` of the safetensors file at `path` (a file Kumo or the golden script wrote).
    private func tensor(_ path: String, _ name: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + length)) as? [String: Any])
        let entry = try XCTUnwrap(header[name] as? [String: Any], "\(path) has no \(name)")
        let range = try XCTUnwrap(entry["data_offsets"] as? [Int])
        return data.subdata(in: 8 + length + range[0]..<8 + length + range[1]).withUnsafeBytes {
            Array($0.bindMemory(to: Float.self))
        }
    }

    /// `kumo logits` on the directory transformers saved is within 1e-4 of transformers' logits, and
    /// says that it ignores router_jitter_noise; the Mixtral directory and Kumo weights file that
    /// `kumo convert` writes from the fused copy give the same logits bit for bit.
    func testLogitsOfTransformersMixtralMatchAndSurviveConversion() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let reference = golden.appendingPathComponent("mixtral-tiny-logits.safetensors").path
        let ids = try tensor(reference, "input_ids").map { Int32(bitPattern: $0.bitPattern) }
        let sequences = [Array(ids[0..<12]), Array(ids[12..<24])]
        try JSONEncoder().encode(sequences).write(to: URL(fileURLWithPath: dir + "/tokens.json"))
        func logits(_ model: String, _ out: String) throws -> [Float] {
            let r = try KumoProcess.run([
                "logits", "--model", model, "--tokens", dir + "/tokens.json", "--out", dir + "/" + out,
            ])
            XCTAssertEqual(r.status, 0, r.err)
            XCTAssertTrue(r.err.contains("router_jitter_noise 0.01 is ignored") == (model == mixtral), r.err)
            return try tensor(dir + "/" + out, "logits")
        }
        let ours = try logits(mixtral, "a.safetensors")
        let expected = try tensor(reference, "logits")
        XCTAssertEqual(ours.count, expected.count)
        let maxDiff = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
        print("kumo logits on transformers' Mixtral: max |Δ| \(maxDiff)")
        XCTAssertLessThan(maxDiff, 1e-4)

        let fused = golden.appendingPathComponent("mixtral-tiny-fused").path
        let toHF = try KumoProcess.run(["convert", "--from", fused, "--to", dir + "/hf"])
        XCTAssertEqual(toHF.status, 0, toHF.err)
        XCTAssertTrue(toHF.err.contains("FFN 24 × 4 experts (top 2)"), toHF.err)
        let config = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: dir + "/hf/config.json")))
        XCTAssertEqual((config as? [String: Any])?["architectures"] as? [String], ["MixtralForCausalLM"])
        let toKumo = try KumoProcess.run(["convert", "--from", dir + "/hf", "--to", dir + "/m.safetensors"])
        XCTAssertEqual(toKumo.status, 0, toKumo.err)
        XCTAssertEqual(try logits(dir + "/hf", "b.safetensors"), ours)
        XCTAssertEqual(try logits(dir + "/m.safetensors", "c.safetensors"), ours)
        let gguf = try KumoProcess.run(["convert", "--from", mixtral, "--to", dir + "/m.gguf"])
        XCTAssertNotEqual(gguf.status, 0)
        XCTAssertTrue(gguf.err.contains("mixture of experts is not written as GGUF"), gguf.err)
    }

    /// Generation with int8 attention (experts in fp32) and perplexity run on the mixture.
    func testGenerateAndEvalRunAMixture() throws {
        let generate = try KumoProcess.run([
            "generate", "--model", mixtral, "--tokenizer", "byte", "--prompt", "x", "--max-new-tokens", "3",
            "--weights", "int8", "--threads", "1", "--context", "64",
        ])
        XCTAssertEqual(generate.status, 0, generate.err)
        XCTAssertTrue(
            generate.err.contains("generated 3 tokens") && generate.err.contains("(int8 weights"), generate.err)

        let dir = try KumoProcess.temporaryDirectory(for: self)
        let lines = (0..<4).map { #"{"text": "line \#($0) of a small corpus for the mixture's perplexity"}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: dir + "/c.jsonl"))
        let eval = try KumoProcess.run([
            "eval", "--model", mixtral, "--tokenizer", "byte", "--tasks", "perplexity", "--corpus", dir + "/c.jsonl",
            "--context-length", "32", "--stride", "16", "--output", dir + "/eval.json",
        ])
        XCTAssertEqual(eval.status, 0, eval.err)
        let report = try String(contentsOfFile: dir + "/eval.json", encoding: .utf8)
        XCTAssertTrue(report.contains("perplexity"), report)
    }

    /// `kumo serve` completes a request on the mixture.
    func testServeCompletesOnAMixture() async throws {
        let server = try ServedKumo(for: self, model: mixtral, ["--tokenizer", "byte", "--context", "64"])
        let (status, data) = try await server.call(
            "/v1/completions", body: ["prompt": "x", "max_tokens": 3, "temperature": 0])
        XCTAssertEqual(status, 200, String(decoding: data, as: UTF8.self))
        let usage = try ServedKumo.object(data)["usage"] as? [String: Any]
        XCTAssertEqual(usage?["completion_tokens"] as? Int, 3, String(decoding: data, as: UTF8.self))
    }
}
