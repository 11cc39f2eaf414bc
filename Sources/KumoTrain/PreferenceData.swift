import KumoData
import KumoInterop

extension TrainingData {
    /// The preference pairs of `data.path` (`data.format = "preference"`), templated with
    /// `data.chat_template`, over-long ones handled by `data.overlong`.
    static func preference(_ config: RunConfig) throws -> TrainingData {
        let tokenizer = try loadTokenizer(model: config.data.tokenizer)
        try checkVocabulary(tokenizer.vocabSize, config, "data.tokenizer (\(config.data.tokenizer))")
        do {
            let (records, read) = try PreferenceRecord.read(paths: config.data.path)
            if records.isEmpty {
                throw ConfigError(
                    "data.path: no record has the string fields \"prompt\", \"chosen_response\" and "
                        + "\"rejected_response\" that data.format = \"preference\" reads (\(read))")
            }
            let source = try PreferenceSource(
                records: records, template: config.data.chatTemplate, tokenizer: tokenizer,
                seqLen: config.seqLength, truncate: config.data.overlong == .truncate,
                samples: config.steps * config.globalBatchSize, seed: config.seed)
            return TrainingData(
                stream: source, tokenizer: tokenizer, tokenizerName: config.data.tokenizer,
                summary: "preference records (chat_template \(config.data.chatTemplate.rawValue)): \(read); "
                    + source.summary,
                sources: [])
        } catch let error as PreferenceDataError {
            throw ConfigError("data.path: \(error.description)")
        } catch let error as CorpusError {
            throw ConfigError("data.path: \(error.description)")
        }
    }
}
