import Foundation
import KumoData
import KumoInterop
import KumoModel
import XCTest

@testable import KumoInference

/// Rendering of ChatML and LLM-jp's instruction format.
final class ChatTemplateTests: XCTestCase {
    func testChatMLRendersTurnsAndAddsTheDefaultSystemMessage() {
        let t = ChatTemplate.chatML(defaultSystem: "Be kind.")
        XCTAssertEqual(
            t.render([ChatMessage(role: "user", content: "Hi")]),
            "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(
            t.render([ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "U")]),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
    }

    func testLLMJPInstructionFormat() {
        XCTAssertEqual(
            ChatTemplate.llmJP.render([ChatMessage(role: "user", content: "日本の首都は？")]),
            "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n日本の首都は？\n\n### 応答:\n")
    }

    func testRecognizesChatMLAndLLMJPJinja() {
        let smol = """
            {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
            You are SmolLM<|im_end|>
            ' }}{% endif %}{{'<|im_start|>' + message['role'] + '
            ' + message['content'] + '<|im_end|>' + '
            '}}{% endfor %}
            """
        XCTAssertEqual(ChatTemplate.recognize(smol), .chatML(defaultSystem: "You are SmolLM"))
        XCTAssertEqual(ChatTemplate.recognize("{{ '### 指示:\\n' }}{{ '### 応答:\\n' }}"), .llmJP)
        XCTAssertNil(ChatTemplate.recognize("{{ '[INST]' }}"))
    }

    func testInstructionTemplatesRenderLikeTheChatTemplateOfTheirTunedModel() {
        let user = [ChatMessage(role: "user", content: "Q")]
        XCTAssertEqual(InstructionTemplate.llmJP.prompt(instruction: "Q"), ChatTemplate.llmJP.render(user))
        XCTAssertEqual(InstructionTemplate.chatML.prompt(instruction: "Q"), ChatTemplate(tuning: .chatML)?.render(user))
        XCTAssertEqual(
            InstructionTemplate.llmJP.prompt(instruction: "訳して", input: "猫"),
            InstructionTemplate.llmJPInputPreamble + "\n\n### 指示:\n訳して\n\n### 入力:\n猫\n\n### 応答:\n")
        XCTAssertEqual(InstructionTemplate.plain.prompt(instruction: "Q", input: "I"), "Q\n\nI\n")
        XCTAssertNil(ChatTemplate(tuning: .plain))
    }

    /// A Kumo weights file names the template it was tuned with, else its recorded tokenizer's:
    /// a model fine-tuned from SmolLM2's GGUF chats in ChatML without flags.
    func testKumoWeightsChatAsTunedOrAsTheirTokenizerModel() throws {
        let dir = NSTemporaryDirectory() + "kumo-chat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try LlamaModel(
            config: ModelConfig(
                vocabSize: 300, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1, numAttentionHeads: 2))
        let gguf = try SmolLM2Fixture.ggufPath()
        try KumoWeights.save(model, to: dir + "/a.safetensors", tokenizer: gguf)
        try KumoWeights.save(model, to: dir + "/b.safetensors", tokenizer: gguf, chatTemplate: "llm-jp")
        try KumoWeights.save(model, to: dir + "/c.safetensors", tokenizer: "byte")
        let fromGGUF = try ServedModel.chatTemplate(of: gguf, format: .gguf)
        guard case .chatML(let system?)? = fromGGUF else {
            return XCTFail("SmolLM2 names ChatML: \(String(describing: fromGGUF))")
        }
        XCTAssertTrue(system.contains("SmolLM"), system)
        XCTAssertEqual(try ServedModel.chatTemplate(of: dir + "/a.safetensors", format: .kumo), fromGGUF)
        XCTAssertEqual(try ServedModel.chatTemplate(of: dir + "/b.safetensors", format: .kumo), .llmJP)
        XCTAssertNil(try ServedModel.chatTemplate(of: dir + "/c.safetensors", format: .kumo))
    }
}
