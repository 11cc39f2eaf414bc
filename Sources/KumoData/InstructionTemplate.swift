/// How an instruction (and its optional input) becomes the prompt text a model is tuned and scored
/// on (`data.chat_template`, `kumo eval --chat-template`); the response follows the prompt directly.
public enum InstructionTemplate: String, Sendable, CaseIterable {
    /// LLM-jp's llm-jp-sft format: a preamble, `### 指示:`, optionally `### 入力:`, then `### 応答:`.
    case llmJP = "llm-jp"
    /// ChatML as SmolLM2 and Qwen use it: one user turn (instruction, then input after a blank
    /// line), then the assistant's turn opens.
    case chatML = "chatml"
    /// The instruction, then the input after a blank line, then a newline; no markers.
    case plain

    /// LLM-jp's preamble when the example has an input.
    public static let llmJPInputPreamble =
        "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"

    /// The names `data.chat_template` accepts, for messages.
    public static var names: String { allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") }

    /// The prompt of `instruction` with `input` (empty: none), ending where the response starts.
    public func prompt(instruction: String, input: String = "") -> String {
        switch self {
        case .llmJP:
            guard !input.isEmpty else {
                return ChatTemplate.llmJP.render([ChatMessage(role: "user", content: instruction)])
            }
            return Self.llmJPInputPreamble + "\n\n### 指示:\n\(instruction)\n\n### 入力:\n\(input)\n\n### 応答:\n"
        case .chatML:
            let user = input.isEmpty ? instruction : instruction + "\n\n" + input
            return ChatTemplate.chatML(defaultSystem: nil).render([ChatMessage(role: "user", content: user)])
        case .plain:
            return (input.isEmpty ? instruction : instruction + "\n\n" + input) + "\n"
        }
    }
}

/// A prompt and one response to it, tokenized for tuning or scoring: the prompt and the response
/// are tokenized separately (so the boundary never merges into one token) and the response ends
/// with the tokenizer's end-of-sequence token; only response tokens are scored. Special tokens
/// written in the prompt (ChatML's `<|im_start|>`) become their ids, as Hugging Face tokenizers
/// do; in the response they stay text.
public struct PromptResponseTokens: Sendable, Equatable {
    public var prompt: [Int32]
    /// The response's tokens, its end-of-sequence token last.
    public var response: [Int32]

    /// Tokenizes `prompt` and `response` with `tokenizer`, appending its EOS (its end-of-document
    /// token when it has no EOS) to the response.
    public init(prompt: String, response: String, tokenizer: any Tokenizer) {
        self.prompt =
            (tokenizer as? ByteLevelBPETokenizer)?.encode(prompt, parseSpecial: true) ?? tokenizer.encode(prompt)
        self.response = tokenizer.encode(response) + [tokenizer.eos ?? tokenizer.eod]
    }

    /// Already tokenized prompt and response (`response` ends with its EOS).
    public init(prompt: [Int32], response: [Int32]) {
        self.prompt = prompt
        self.response = response
    }

    /// Prompt then response.
    public var tokens: [Int32] { prompt + response }
}

extension ChatTemplate {
    /// The chat template that renders a one-turn conversation as `template` renders an
    /// instruction without input (nil for `plain`, which has no turn markers to stop at).
    public init?(tuning template: InstructionTemplate) {
        switch template {
        case .llmJP: self = .llmJP
        case .chatML: self = .chatML(defaultSystem: nil)
        case .plain: return nil
        }
    }
}
