import KumoComm
import KumoCore
import KumoModel

/// Assembles the whole model's parameters on one rank from the shards that tensor, pipeline and
/// expert parallelism and ZeRO-3 spread over the world (evaluation during training, parameter dumps,
/// the final weights).
public enum WholeModel {
    /// Every rank calls this with its shard's parameters, of which it holds `held` (a range of
    /// its flat buffer: its ZeRO-3 partition; all of it by default); `root` returns the whole
    /// model laid out by `ParameterLayout(layout.config)`, the others nil. Of the ranks holding
    /// the same part (replicas), the lowest one's copy is used.
    public static func gather(
        _ params: UnsafePointer<Float>, layout: ParameterLayout, held: Range<Int>? = nil, world: any Communicator,
        root: Int = 0
    ) -> FloatBuffer? {
        let mine = Part(shard: layout.shard, held: held ?? 0..<layout.count)
        let parts = world.allGatherBytes(mine.encoded).map(Part.init)
        let whole = ParameterLayout(layout.config)
        let senders = parts.indices.filter { r in parts[..<r].allSatisfy { $0 != parts[r] } }
        guard world.rank == root else {
            if senders.contains(world.rank) {
                world.send(params + mine.held.lowerBound, count: mine.held.count, to: root, tag: tag)
            }
            return nil
        }
        let out = FloatBuffer(count: whole.count)
        for r in senders {
            let part = parts[r]
            let received = r == root ? nil : FloatBuffer(count: part.held.count)
            if let received { world.receive(received.pointer, count: part.held.count, from: r, tag: tag) }
            let source = received.map { UnsafePointer($0.pointer) } ?? params + part.held.lowerBound
            let piece = ParameterLayout(layout.config, shard: part.shard)
            for run in piece.runs(in: whole, within: part.held) {
                (out.pointer + run.whole).update(from: source + (run.local - part.held.lowerBound), count: run.count)
            }
        }
        return out
    }

    private static let tag = 7301

    /// What a rank holds: its shard and the range of the shard's buffer it has.
    private struct Part: Equatable {
        var shard: ModelShard
        var held: Range<Int>

        init(shard: ModelShard, held: Range<Int>) {
            self.shard = shard
            self.held = held
        }

        /// Decodes `encoded`'s ten little-endian Int64 fields.
        init(_ bytes: [UInt8]) {
            let f = (0..<10).map { i in
                Int(
                    Int64(
                        littleEndian: bytes[(8 * i)..<(8 * i + 8)].withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
                    ))
            }
            shard = ModelShard(
                tensorRank: f[0], tensorSize: f[1], expertRank: f[8], expertSize: f[9], layers: f[2]..<f[3],
                hasEmbedding: f[4] == 1, hasHead: f[5] == 1)
            held = f[6]..<f[7]
        }

        var encoded: [UInt8] {
            let s = shard
            let fields = [
                s.tensorRank, s.tensorSize, s.layers.lowerBound, s.layers.upperBound, s.hasEmbedding ? 1 : 0,
                s.hasHead ? 1 : 0, held.lowerBound, held.upperBound, s.expertRank, s.expertSize,
            ]
            return fields.flatMap { withUnsafeBytes(of: Int64($0).littleEndian) { Array($0) } }
        }
    }
}
