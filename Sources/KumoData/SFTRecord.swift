import Foundation

/// One instruction-tuning record of an SFT JSONL file (`data.format = "sft"`, `kumo eval --tasks
/// sft_loss`): `{"instruction": ..., "input": ..., "output": ...}`; `input` may be missing or empty.
public struct SFTRecord: Sendable, Equatable {
    public var instruction: String
    public var input: String
    /// The response the model is tuned or scored on.
    public var output: String

    /// A record of the three fields.
    public init(instruction: String, input: String = "", output: String) {
        (self.instruction, self.input, self.output) = (instruction, input, output)
    }

    /// The prompt text of the record under `template` (the response follows it directly).
    public func prompt(_ template: InstructionTemplate) -> String {
        template.prompt(instruction: instruction, input: input)
    }

    /// The record's prompt and response tokenized with `tokenizer` (EOS after the response).
    public func tokens(_ template: InstructionTemplate, tokenizer: any Tokenizer) -> PromptResponseTokens {
        PromptResponseTokens(prompt: prompt(template), response: output, tokenizer: tokenizer)
    }

    /// Reads the records of `paths` (JSONL files, possibly gzipped, or directories of them) in
    /// order. A line that is not a JSON object with string `instruction` and `output` (and, if
    /// present, string `input`) is left out and counted by reason in the summary.
    public static func read(paths: [String]) throws -> (records: [SFTRecord], summary: CorpusSummary) {
        try CorpusReader.readRecords(paths: paths, of: "SFT records are JSON lines {instruction, input, output}", parse)
    }

    /// The record a JSONL line holds, or why it is left out.
    static func parse(_ line: CorpusRecord) -> Result<SFTRecord, CorpusProblem> {
        let object: [String: Any]
        switch CorpusReader.jsonObject(line) {
        case .success(let o): object = o
        case .failure(let problem): return .failure(problem)
        }
        func problem(_ detail: String) -> Result<SFTRecord, CorpusProblem> {
            .failure(CorpusProblem(file: line.file, line: line.line, reason: .missingField, detail: detail))
        }
        guard let instruction = object["instruction"] as? String, let output = object["output"] as? String else {
            return problem("needs string fields 'instruction' and 'output'")
        }
        let input = object["input"] ?? ""
        guard let inputText = input as? String ?? (input is NSNull ? "" : nil) else {
            return problem("field 'input' is not a string")
        }
        return .success(SFTRecord(instruction: instruction, input: inputText, output: output))
    }
}
