import KumoComm
import KumoModel

/// The expert group as the model sees it: the all-to-all that carries a mixture's tokens to the
/// ranks holding their experts and back.
final class ExpertParallelGroup: ExpertParallelOps {
    let group: any Communicator

    init(group: any Communicator) { self.group = group }

    var rank: Int { group.rank }
    var size: Int { group.size }

    func allToAll(
        _ send: UnsafePointer<Float>, sendCounts: [Int], _ receive: UnsafeMutablePointer<Float>, receiveCounts: [Int]
    ) { group.allToAll(send, sendCounts: sendCounts, receive, receiveCounts: receiveCounts) }
}

extension ParallelConfig {
    /// Checks `expert` against the model and the rest of the layout: a mixture whose experts
    /// divide over it, with plain data parallelism or ZeRO-1 (no tensor, pipeline or hybrid sharding),
    /// and a micro-batch whose routed rows (`rows` × experts per token) the exchange can count: the
    /// all-to-all carries them as fp32, exact below 2²⁴.
    func validateExpert(_ model: ModelConfig, rows: Int) throws(ParallelConfigError) {
        guard expert > 1 else {
            if expert < 1 { throw ParallelConfigError("parallel.expert = \(expert): must be at least 1") }
            return
        }
        guard model.isMoE else {
            throw ParallelConfigError(
                "parallel.expert = \(expert) needs a mixture of experts: set model.num_local_experts (or a -moe preset)"
            )
        }
        if model.numLocalExperts % expert != 0 {
            throw ParallelConfigError(
                "parallel.expert = \(expert) must divide model.num_local_experts = \(model.numLocalExperts)")
        }
        if rows * model.numExpertsPerTok >= 1 << 24 {
            throw ParallelConfigError(
                "parallel.expert = \(expert): train.micro_batch_size × train.seq_length = \(rows) rows routed to "
                    + "\(model.numExpertsPerTok) experts each exceed the 2^24 an exchange can count; use a smaller micro-batch"
            )
        }
        if zeroStage.shardsGradients || shardGroupSize > 0 {
            throw ParallelConfigError(
                "parallel.expert = \(expert) works with parallel.zero_stage = 0 or 1 and no shard_group_size: "
                    + "experts and the other tensors are summed over different groups, which ZeRO-2/3's shards do not follow"
            )
        }
    }
}

/// The groups of expert parallelism: `expert` consecutive data-parallel ranks split the experts
/// (the expert group), and the ranks at the same place in every expert group hold the same
/// experts (the expert-data group, over which the experts' gradients are summed).
struct ExpertGroups {
    let expert: any Communicator
    let expertData: any Communicator

    /// Splits `world` by `mesh` into groups of `size` data-parallel ranks.
    init(world: any Communicator, mesh: DeviceMesh, size: Int) throws(ParallelConfigError) {
        guard mesh.data % size == 0 else {
            throw ParallelConfigError(
                "parallel.expert = \(size) must divide the data-parallel size \(mesh.data) (world \(mesh.world) / "
                    + "tensor × pipeline); launch a multiple of \(size) ranks")
        }
        (expert, expertData) = try splitConsecutive(world, mesh, size, names: ("ep", "edp"))
    }
}

/// Splits `world`'s data-parallel groups into groups of `size` consecutive ranks and the groups of
/// the ranks at the same place in each (hybrid sharding's shard and replica groups; expert
/// parallelism's expert and expert-data groups), named `names`.
func splitConsecutive(
    _ world: any Communicator, _ mesh: DeviceMesh, _ size: Int, names: (String, String)
) throws(ParallelConfigError) -> (any Communicator, any Communicator) {
    do {
        let colors = try mesh.hybridGroups(of: world.rank, shardSize: size)
        return (
            world.split(color: colors.shard, key: world.rank, name: names.0),
            world.split(color: colors.replica, key: world.rank, name: names.1)
        )
    } catch {
        throw ParallelConfigError(error.description)
    }
}
