import KumoModel

extension RunConfig {
    /// Refuses `parallel.tensor` and `parallel.sequence` settings that cannot work, saying what would.
    func validateTensorParallel(zeroStage: Int) throws {
        let t = int("parallel.tensor")
        guard t >= 1 else { throw ConfigError("parallel.tensor = \(t): must be at least 1") }
        if bool("parallel.sequence") && t == 1 {
            throw ConfigError(
                "parallel.sequence = true needs parallel.tensor > 1: sequence parallelism splits the norms' rows "
                    + "over the tensor group")
        }
        guard t > 1 else { return }
        do {
            try ModelShard(tensorSize: t, layers: 0..<model.numHiddenLayers, hasEmbedding: true, hasHead: true)
                .validate(model)
        } catch {
            throw ConfigError(error.description)
        }
        if zeroStage >= 2 {
            throw ConfigError(
                "parallel.zero_stage = \(zeroStage) with parallel.tensor = \(t) is not supported: tensor parallelism "
                    + "works with plain data parallelism (zero_stage = 0) and ZeRO-1 across the data-parallel ranks")
        }
        let rows = microBatchSize * seqLength
        if bool("parallel.sequence") && rows % t != 0 {
            throw ConfigError(
                "parallel.sequence = true: train.micro_batch_size × train.seq_length = \(rows) rows must be divisible "
                    + "by parallel.tensor = \(t)")
        }
    }
}
