/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// "system", "user" or "assistant".
    public var role: String
    /// The text of the turn.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Prompt formats of chat-tuned models: how a conversation becomes the text the model continues.
public enum ChatTemplate: Sendable, Equatable {
    /// ChatML (`<|im_start|>role\ncontent<|im_end|>\n`), as SmolLM2 and Qwen use; `defaultSystem`
    /// is inserted as the first turn when the conversation has no system message.
    case chatML(defaultSystem: String?)
    /// LLM-jp's instruction format (### 指示: / ### 応答:).
    case llmJP

    /// LLM-jp's preamble.
    public static let llmJPPreamble = "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"

    /// The template a model's chat_template metadata (Jinja) describes, when it is one Kumo knows:
    /// ChatML, with the default system message the template writes, or LLM-jp's format.
    public static func recognize(_ jinja: String) -> ChatTemplate? {
        if jinja.contains("<|im_start|>") {
            let marker = "<|im_start|>system\n"
            guard jinja.contains("!= 'system'") || jinja.contains("!= \"system\""),
                let start = jinja.range(of: marker),
                let end = jinja.range(of: "<|im_end|>", range: start.upperBound..<jinja.endIndex)
            else { return .chatML(defaultSystem: nil) }
            return .chatML(defaultSystem: String(jinja[start.upperBound..<end.lowerBound]))
        }
        if jinja.contains("### 指示:") && jinja.contains("### 応答:") { return .llmJP }
        return nil
    }

    /// The prompt for `messages`, ending where the assistant's reply starts.
    public func render(_ messages: [ChatMessage]) -> String {
        switch self {
        case .chatML(let defaultSystem):
            var out = ""
            if let defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            return out + "<|im_start|>assistant\n"
        case .llmJP:
            var out = Self.llmJPPreamble + "\n\n"
            for m in messages {
                switch m.role {
                case "system": out = m.content + "\n\n"
                case "assistant": out += m.content + "\n\n"
                default: out += "### 指示:\n\(m.content)\n\n### 応答:\n"
                }
            }
            return out
        }
    }

    /// Strings that end the assistant's turn.
    public var stopStrings: [String] {
        switch self {
        case .chatML: return ["<|im_end|>"]
        case .llmJP: return ["\n\n### 指示:"]
        }
    }
}
