import Foundation
import KumoData
import KumoInterop
import KumoModel

/// One prepared dataset a run trains on, as recorded in the run directory (`data_sources.json`).
public struct TrainingSource: Codable, Equatable, Sendable {
    public var prefix: String
    public var level: ReleaseLevel
    /// The source's share of the samples (the weights sum to 1).
    public var weight: Double
    public var documents: Int
    public var tokens: Int
    /// Samples the run will draw from it.
    public var samples: Int
}

/// What a run trains on: the stream of samples, the tokenizer that made it, and a description.
public struct TrainingData {
    /// The sequences the trainer reads.
    public var stream: any SequenceSource
    /// The tokenizer of the data (nil for synthetic tokens).
    public var tokenizer: (any Tokenizer)?
    /// What `tokenizer` was loaded from (`loadTokenizer(model:)`'s argument), recorded in the run's
    /// weights file; for synthetic tokens, `data.tokenizer` when the run starts from `model.init`.
    public var tokenizerName: String?
    /// A line saying what was read.
    public var summary: String
    /// The prepared datasets and their release levels (empty unless `data.sources` is used).
    public var sources: [TrainingSource]
    /// What became of the examples of SFT records (nil for other formats).
    public var sft: SFTDataStats?

    /// Builds the data of a run from its `[data]` section: synthetic tokens, text files tokenized in
    /// memory (`data.path`), SFT records (`data.format = "sft"`), or a blend of prepared datasets
    /// (`data.sources`); with `data.reset_attention`, the windows of text files and prepared
    /// datasets restart positions and attention after every end-of-document token.
    public static func make(_ config: RunConfig) throws -> TrainingData {
        let vocab = config.model.vocabSize
        if config.data.synthetic {
            if config.data.resetAttention {
                throw ConfigError(
                    "data.reset_attention needs documents, which data.synthetic tokens do not have; set data.path or "
                        + "data.sources, or remove data.reset_attention")
            }
            return TrainingData(
                stream: SyntheticTokenStream(vocabSize: vocab, seed: config.seed), tokenizer: nil,
                tokenizerName: config.modelSection.initPath.map { _ in config.data.tokenizer },
                summary: "synthetic random tokens", sources: [])
        }
        if !config.dataSources.isEmpty { return try blend(config) }
        if config.data.format == .sft { return try sft(config) }
        if config.data.format == .preference { return try preference(config) }
        let tokenizer = try loadTokenizer(model: config.data.tokenizer)
        try checkVocabulary(tokenizer.vocabSize, config, "data.tokenizer (\(config.data.tokenizer))")
        let corpus = try CorpusReader(paths: config.data.path, textField: config.data.textField)
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
        return TrainingData(
            stream: windows(
                InMemoryTokenStream(tokens: tokens, vocabSize: tokenizer.vocabSize, seed: config.seed),
                eod: tokenizer.eod, config),
            tokenizer: tokenizer, tokenizerName: config.data.tokenizer, summary: "\(summary), \(tokens.count) tokens",
            sources: [])
    }

    /// The windows of `stream`, with positions and attention reset after `eod` under `data.reset_attention`.
    private static func windows(_ stream: any TokenStream, eod: Int32, _ config: RunConfig) -> any SequenceSource {
        config.data.resetAttention ? DocumentResetSource(stream: stream, eod: eod) : stream
    }

    static func checkVocabulary(_ size: Int, _ config: RunConfig, _ what: String) throws {
        if config.model.vocabSize < size {
            throw ConfigError(
                "model.vocab_size = \(config.model.vocabSize) is smaller than the \(size) ids of \(what); "
                    + "set model.vocab_size to at least \(size) (a multiple of 128 is fastest)")
        }
    }

    /// The blend of `data.sources`: each source's release level must allow training, and all must
    /// share one tokenizer.
    private static func blend(_ config: RunConfig) throws -> TrainingData {
        let specs = config.dataSources
        var datasets: [IndexedDataset] = []
        var metadata: [DatasetMetadata] = []
        for spec in specs {
            let meta = try DatasetMetadata.load(prefix: spec.prefix)
            guard meta.level.mayTrain else {
                throw ConfigError(
                    "data.sources: \(spec.prefix) has release level \(meta.level.rawValue) (\(meta.level.allowed)); "
                        + "training on it is not allowed: remove it from data.sources")
            }
            if let first = metadata.first,
                (first.tokenizer, first.vocabSize, first.eod) != (meta.tokenizer, meta.vocabSize, meta.eod)
            {
                throw ConfigError(
                    "data.sources: \(spec.prefix) was tokenized with \(meta.tokenizer) (vocab \(meta.vocabSize)) but "
                        + "\(specs[0].prefix) with \(first.tokenizer) (vocab \(first.vocabSize)); prepare every source "
                        + "with the same tokenizer")
            }
            let dataset = try IndexedDataset(prefix: spec.prefix)
            try meta.checkTokens(of: dataset, vocabSize: min(meta.vocabSize, config.model.vocabSize))
            metadata.append(meta)
            datasets.append(dataset)
        }
        try checkVocabulary(metadata[0].vocabSize, config, "the tokenizer of data.sources (\(metadata[0].tokenizer))")
        let weights =
            specs.allSatisfy { $0.weight != nil }
            ? specs.map { $0.weight! }
            : BlendedDataset.weights(tokens: datasets.map(\.tokenCount), epochs: specs.map { $0.epochs ?? 1 })
        let total = config.steps * config.globalBatchSize
        let counts = BlendedDataset.samplesNeeded(weights: weights, total: total)
        let streams = try zip(datasets, counts).enumerated().map { i, pair in
            try GPTDataset(
                dataset: pair.0, seqLength: config.seqLength, numSamples: pair.1, seed: config.seed &+ UInt64(i),
                vocabSize: metadata[i].vocabSize)
        }
        let blended = try BlendedDataset(sources: streams, weights: weights, numSamples: total)
        let normalized = blended.weights
        let sources = specs.indices.map { i in
            TrainingSource(
                prefix: specs[i].prefix, level: metadata[i].level, weight: normalized[i],
                documents: datasets[i].documentCount, tokens: datasets[i].tokenCount, samples: counts[i])
        }
        let tokenizer = try loadTokenizer(model: metadata[0].tokenizer)
        let summary = sources.map {
            String(format: "%@ (%@, %.1f%%, %d tokens)", $0.prefix, $0.level.rawValue, $0.weight * 100, $0.tokens)
        }
        return TrainingData(
            stream: windows(blended, eod: metadata[0].eod, config), tokenizer: tokenizer,
            tokenizerName: metadata[0].tokenizer,
            summary: summary.joined(separator: "; "), sources: sources)
    }
}
