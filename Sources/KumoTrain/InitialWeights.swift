import KumoInterop
import KumoModel

/// The weights a run starts from: seeded random ones, or those of the pretrained model that
/// `model.init` names, loaded whole once and copied into any shard of it.
struct InitialWeights {
    private let seed: UInt64
    private let std: Double
    /// The whole pretrained model, when the run starts from `model.init`.
    private let pretrained: LlamaModel?

    /// Loads `config`'s `model.init` model, if any, checking its shape is the run's.
    init(_ config: RunConfig) throws {
        try self.init(config, path: config.modelSection.initPath, key: "model.init")
    }

    /// Loads the model at `path` (nil: seeded weights), which the configuration key `key` names,
    /// checking its shape is the run's.
    init(_ config: RunConfig, path: String?, key: String) throws {
        seed = config.seed
        std = config.modelSection.initStd
        guard let path else {
            pretrained = nil
            return
        }
        let model = try loadModel(path: path)
        guard model.config == config.model else {
            throw ConfigError(
                "\(key) = \"\(path)\": its shape differs from the run's model (\(model.config) vs \(config.model)); "
                    + "use a model of the run's shape")
        }
        pretrained = model
    }

    /// Fills every parameter `model` (a whole model or any rank's shard) holds: each run of its
    /// layout from the pretrained model's whole layout, or the seeded draws.
    func fill(_ model: LlamaModel) {
        guard let pretrained else {
            model.initializeWeights(seed: seed, std: std)
            return
        }
        for run in model.layout.runs(in: pretrained.layout) {
            (model.params.pointer + run.local).update(from: pretrained.params.pointer + run.whole, count: run.count)
        }
    }
}
