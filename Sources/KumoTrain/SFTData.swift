import Foundation
import KumoData
import KumoInterop

extension TrainingData {
    /// The SFT rows of `data.path` (`data.format = "sft"`): records templated with
    /// `data.chat_template`, tokenized with `data.tokenizer`, packed (`data.packing`) into rows of
    /// `train.seq_length`, over-long ones truncated or skipped (`data.overlong`).
    static func sft(_ config: RunConfig) throws -> TrainingData {
        let tokenizer = try loadTokenizer(model: config.data.tokenizer)
        try checkVocabulary(tokenizer.vocabSize, config, "data.tokenizer (\(config.data.tokenizer))")
        let (records, read) = try SFTRecord.read(paths: config.data.path)
        let template = config.data.chatTemplate
        let source = SFTSource(
            examples: records.map { $0.tokens(template, tokenizer: tokenizer) }, seqLength: config.seqLength,
            vocabSize: tokenizer.vocabSize, pad: tokenizer.eos ?? tokenizer.eod, packing: config.data.packing,
            truncate: config.data.overlong == .truncate, seed: config.seed,
            numSamples: config.steps * config.globalBatchSize)
        let stats = source.stats
        let summary =
            "sft records (chat_template \(template.rawValue), packing \(config.data.packing), overlong "
            + "\(config.data.overlong.rawValue)): \(read); \(stats.summary)"
        guard stats.rows > 0 else {
            throw ConfigError(
                "data.path: no SFT example fits a row of train.seq_length = \(config.seqLength) (\(summary)); "
                    + "check the records, or raise train.seq_length or set data.overlong = \"truncate\"")
        }
        return TrainingData(
            stream: source, tokenizer: tokenizer, tokenizerName: config.data.tokenizer, summary: summary, sources: [],
            sft: stats)
    }
}
