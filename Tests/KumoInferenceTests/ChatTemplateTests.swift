import KumoData
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
}
