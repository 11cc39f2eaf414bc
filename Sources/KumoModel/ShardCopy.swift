/// A contiguous run of a shard's floats: `count` floats at `local` in the shard's flat buffer,
/// which lie at `whole` in the whole model's flat buffer.
public struct ShardRun: Sendable, Equatable {
    public var local: Int
    public var whole: Int
    public var count: Int

    public init(local: Int, whole: Int, count: Int) {
        self.local = local
        self.whole = whole
        self.count = count
    }
}

extension ParameterLayout {
    /// For each tensor of this (shard) layout, its whole tensor in `whole`, the whole model's layout.
    private func wholeTensors(in whole: ParameterLayout) -> [ParameterTensor] {
        let byName = Dictionary(uniqueKeysWithValues: whole.tensors.map { ($0.name, $0) })
        return tensors.map { t in
            guard let w = byName[t.name], w.shape == t.globalShape else {
                preconditionFailure("\(t.name) of the shard is not a piece of the whole model's tensor")
            }
            return w
        }
    }

    /// The contiguous runs of this shard's floats and where they lie in `wholeLayout`'s buffer, in
    /// local order: one per tensor, or one per row of a tensor sliced by columns. With `within`,
    /// only the parts inside that range of the shard's buffer; with `firstReplicaOnly`, only the
    /// tensors of which this rank holds the first of its identical tensor-parallel copies (so the
    /// tensor group together covers the whole model once).
    public func runs(
        in wholeLayout: ParameterLayout, within range: Range<Int>? = nil, firstReplicaOnly: Bool = false
    ) -> [ShardRun] {
        let range = range ?? 0..<count
        var out: [ShardRun] = []
        func add(_ local: Int, _ whole: Int, _ n: Int) {
            let lo = max(local, range.lowerBound)
            let hi = min(local + n, range.upperBound)
            if lo < hi { out.append(ShardRun(local: lo, whole: whole + lo - local, count: hi - lo)) }
        }
        for (t, w) in zip(tensors, wholeTensors(in: wholeLayout)) {
            guard t.offset < range.upperBound, t.offset + t.count > range.lowerBound else { continue }
            if firstReplicaOnly && (shard.tensorRank % t.replicas != 0 || (!t.expert && shard.expertRank != 0)) {
                continue
            }
            guard let slice = t.slice else {
                add(t.offset, w.offset, t.count)
                continue
            }
            let columns = t.shape.count > 1 ? t.shape[1] : 1
            if slice.dim == 0 {
                add(t.offset, w.offset + slice.start * columns, t.count)
            } else {
                for r in 0..<t.shape[0] {
                    add(t.offset + r * columns, w.offset + r * slice.total + slice.start, columns)
                }
            }
        }
        return out
    }

    /// Copies this shard's parameters out of `whole` (laid out by `wholeLayout`) into `local`.
    public func copyShard(
        from whole: UnsafePointer<Float>, wholeLayout: ParameterLayout, into local: UnsafeMutablePointer<Float>
    ) {
        for r in runs(in: wholeLayout) { (local + r.local).update(from: whole + r.whole, count: r.count) }
    }

    /// Writes this shard's parameters from `local` to their places in `whole` (laid out by `wholeLayout`).
    public func placeShard(
        _ local: UnsafePointer<Float>, into whole: UnsafeMutablePointer<Float>, wholeLayout: ParameterLayout
    ) {
        for r in runs(in: wholeLayout) { (whole + r.whole).update(from: local + r.local, count: r.count) }
    }
}
