import KumoComm
import KumoCore
import KumoModel

/// Assembles the whole model's parameters on one rank from the shards that tensor and pipeline
/// parallelism spread over the world (checkpoint exports, parameter dumps, the final weights).
public enum WholeModel {
    /// Every rank calls this with its shard's parameters; `root` returns the whole model laid
    /// out by `ParameterLayout(layout.config)`, the others nil. Of the ranks holding the same
    /// shard (data-parallel replicas), the lowest one's copy is used.
    public static func gather(
        _ params: UnsafePointer<Float>, layout: ParameterLayout, world: any Communicator, root: Int = 0
    ) -> FloatBuffer? {
        let all = world.allGatherBytes(encode(layout.shard))
        let shards = all.map(decode)
        let whole = ParameterLayout(layout.config)
        let senders = shards.indices.filter { r in shards[..<r].allSatisfy { $0 != shards[r] } }
        guard world.rank == root else {
            if senders.contains(world.rank) { world.send(params, count: layout.count, to: root, tag: tag) }
            return nil
        }
        let out = FloatBuffer(count: whole.count)
        for r in senders {
            let piece = ParameterLayout(layout.config, shard: shards[r])
            if r == root {
                piece.placeShard(params, into: out.pointer, wholeLayout: whole)
            } else {
                let received = FloatBuffer(count: piece.count)
                world.receive(received.pointer, count: piece.count, from: r, tag: tag)
                piece.placeShard(received.pointer, into: out.pointer, wholeLayout: whole)
            }
        }
        return out
    }

    private static let tag = 7301

    private static func encode(_ s: ModelShard) -> [UInt8] {
        let fields =
            [s.tensorRank, s.tensorSize, s.layers.lowerBound, s.layers.upperBound] + [
                s.hasEmbedding ? 1 : 0, s.hasHead ? 1 : 0,
            ]
        return fields.flatMap { withUnsafeBytes(of: Int64($0).littleEndian) { Array($0) } }
    }

    private static func decode(_ bytes: [UInt8]) -> ModelShard {
        let f = (0..<6).map { i in
            Int(Int64(littleEndian: bytes[(8 * i)..<(8 * i + 8)].withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }))
        }
        return ModelShard(
            tensorRank: f[0], tensorSize: f[1], layers: f[2]..<f[3], hasEmbedding: f[4] == 1, hasHead: f[5] == 1)
    }
}
