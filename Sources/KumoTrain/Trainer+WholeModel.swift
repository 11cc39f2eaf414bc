import KumoComm
import KumoModel
import KumoParallel

extension Trainer {
    /// The whole model's parameters on rank 0 (nil on the others; every rank must call it): this
    /// rank's own model when it holds all of it, else the tensor and pipeline shards or ZeRO-3
    /// partitions gathered into a new model.
    public func wholeModel() throws -> LlamaModel? {
        let partitioned = plan.shardedParameters != nil && !parametersGathered
        if model.layout.shard.isWhole(config.model) && !partitioned { return world.rank == 0 ? model : nil }
        guard
            let params = WholeModel.gather(
                model.params.pointer, layout: model.layout, held: plan.ownedParameters, world: world)
        else {
            return nil
        }
        let whole = try LlamaModel(config: config.model, wholeGradients: false)
        whole.params.pointer.update(from: params.pointer, count: params.count)
        return whole
    }
}
