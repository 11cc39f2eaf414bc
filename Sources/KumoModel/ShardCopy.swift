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

    /// Calls `body(localOffset, wholeOffset, count)` for each contiguous run of this shard's
    /// floats and where they lie in the whole model's buffer.
    private func forEachRun(in whole: ParameterLayout, _ body: (Int, Int, Int) -> Void) {
        for (t, w) in zip(tensors, wholeTensors(in: whole)) {
            guard let slice = t.slice else {
                body(t.offset, w.offset, t.count)
                continue
            }
            let columns = t.shape.count > 1 ? t.shape[1] : 1
            if slice.dim == 0 {
                body(t.offset, w.offset + slice.start * columns, t.count)
            } else {
                for r in 0..<t.shape[0] {
                    body(t.offset + r * columns, w.offset + r * slice.total + slice.start, columns)
                }
            }
        }
    }

    /// Copies this shard's parameters out of `whole` (laid out by `wholeLayout`) into `local`.
    public func copyShard(
        from whole: UnsafePointer<Float>, wholeLayout: ParameterLayout, into local: UnsafeMutablePointer<Float>
    ) {
        forEachRun(in: wholeLayout) { l, w, n in (local + l).update(from: whole + w, count: n) }
    }

    /// Writes this shard's parameters from `local` to their places in `whole` (laid out by `wholeLayout`).
    public func placeShard(
        _ local: UnsafePointer<Float>, into whole: UnsafeMutablePointer<Float>, wholeLayout: ParameterLayout
    ) {
        forEachRun(in: wholeLayout) { l, w, n in (whole + w).update(from: local + l, count: n) }
    }
}
