import KumoData
import KumoInterop

extension TrainingData {
    /// The preference pairs of `data.path` (`data.format = "preference"`), templated with
    /// `data.chat_template`, over-long ones handled by `data.overlong`.
    static func preference(_ config: RunConfig) throws -> TrainingData {
        let tokenizer = try loadTokenizer(model: config.data.tokenizer)
        try checkVocabulary(tokenizer.vocabSize, config, "data.tokenizer (\(config.data.tokenizer))")
        var records: [PreferenceRecord] = []
        do {
            for path in config.data.path { records += try PreferenceRecord.read(jsonl: path) }
            let source = try PreferenceSource(
                records: records, template: config.data.chatTemplate, tokenizer: tokenizer,
                seqLen: config.seqLength, truncate: config.data.overlong == .truncate,
                samples: config.steps * config.globalBatchSize, seed: config.seed)
            return TrainingData(
                stream: source, tokenizer: tokenizer, tokenizerName: config.data.tokenizer,
                summary: source.summary, sources: [])
        } catch let error as PreferenceDataError {
            throw ConfigError("data.path: \(error.description)")
        }
    }
}
