import KumoData
import KumoModel

/// Builds the token stream a run trains on from its `[data]` section.
public enum DataSource {
    /// The stream, and a summary line of what was read (nil for synthetic data).
    public static func make(_ config: RunConfig) throws -> (stream: TokenStream, summary: String?) {
        let vocab = config.model.vocabSize
        if config.bool("data.synthetic") {
            return (SyntheticTokenStream(vocabSize: vocab, seed: config.seed), nil)
        }
        let tokenizer = ByteTokenizer()
        if vocab < tokenizer.vocabSize {
            throw ConfigError(
                "model.vocab_size = \(vocab) is smaller than the byte tokenizer's \(tokenizer.vocabSize) ids")
        }
        let corpus = try CorpusReader(paths: config.strings("data.path"), textField: config.string("data.text_field"))
        var tokens: [Int32] = []
        let summary = try corpus.forEachDocument { doc in
            tokens.append(contentsOf: tokenizer.encode(doc.text))
            tokens.append(tokenizer.eod)
        }
        if tokens.count <= config.seqLength {
            throw ConfigError(
                "data.path: the corpus has \(tokens.count) tokens, fewer than one window of train.seq_length + 1 = "
                    + "\(config.seqLength + 1) (\(summary))")
        }
        return (
            InMemoryTokenStream(tokens: tokens, vocabSize: tokenizer.vocabSize, seed: config.seed),
            "\(summary), \(tokens.count) tokens"
        )
    }
}
