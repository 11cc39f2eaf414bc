import KumoCore

/// How a tensor-parallel model's [rows, hidden] activations sit on its tensor group, and the
/// collectives that join them to the split layers. Whole (no tensor group): nothing moves.
/// Tensor parallel: every rank holds all rows; row-parallel outputs and the input gradients of
/// column-parallel layers are all-reduced. Sequence parallel: the residual stream and norms hold
/// the rank's block of rows (the flattened batch × sequence rows in `size` contiguous blocks);
/// norm outputs are all-gathered before the column-parallel layers and row-parallel outputs
/// reduce-scattered, and the reverse in backward.
struct RowSharding {
    let ops: (any TensorParallelOps)?

    /// Whether the residual stream is split by rows.
    var splitsRows: Bool { ops?.sequenceParallel ?? false }

    /// The rows of `rows` this rank's residual stream and norms hold.
    func localRows(_ rows: Int) -> Int { splitsRows ? rows / ops!.size : rows }

    /// RMS-normalises this rank's rows of x into all `rows` rows of y (gathering them when split);
    /// `local` is scratch for the rank's rows.
    func norm(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float, local: UnsafeMutablePointer<Float>
    ) {
        guard let ops, splitsRows else {
            RMSNormKernel.forward(x: x, weight: weight, y: y, rstd: rstd, rows: rows, dim: dim, eps: eps)
            return
        }
        let mine = rows / ops.size
        RMSNormKernel.forward(x: x, weight: weight, y: local, rstd: rstd, rows: mine, dim: dim, eps: eps)
        ops.allGather(local, into: y, countPerRank: mine * dim)
    }

    /// y = x + the row-parallel output that `partial(buffer, accumulate)` writes (or adds) into a
    /// buffer of all rows, summed over the tensor group (x and y: this rank's rows). Whole, it
    /// adds straight into y (one rank's order of sums); split, it writes into `scratch` (all rows,
    /// not x or y), then all-reduces or reduce-scatters and adds.
    func residualAdd(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        rows: Int, dim: Int, _ partial: (UnsafeMutablePointer<Float>, Bool) -> Void
    ) {
        guard let ops else {
            y.update(from: x, count: rows * dim)
            partial(y, true)
            return
        }
        partial(scratch, false)
        let count = localRows(rows) * dim
        if splitsRows {
            ops.reduceScatter(scratch, into: y, countPerRank: count)
            for i in 0..<count { y[i] += x[i] }
        } else {
            ops.allReduce(scratch, count: count)
            for i in 0..<count { y[i] = x[i] + scratch[i] }
        }
    }

    /// y = the output over all rows that `partial(buffer)` writes, summed over the tensor group
    /// (y: this rank's rows; `scratch`: all rows, used when they are split).
    func sum(
        into y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, rows: Int, dim: Int,
        _ partial: (UnsafeMutablePointer<Float>) -> Void
    ) {
        guard let ops, splitsRows else {
            partial(y)
            ops?.allReduce(y, count: rows * dim)
            return
        }
        partial(scratch)
        ops.reduceScatter(scratch, into: y, countPerRank: rows / ops.size * dim)
    }

    /// ∂L/∂(all rows) from this rank's rows `d`: gathered into `scratch` when split, else `d` itself.
    func gather(_ d: UnsafePointer<Float>, rows: Int, dim: Int, into scratch: UnsafeMutablePointer<Float>)
        -> UnsafePointer<Float>
    {
        guard let ops, splitsRows else { return d }
        ops.allGather(d, into: scratch, countPerRank: rows / ops.size * dim)
        return UnsafePointer(scratch)
    }

    /// The summed ∂L/∂(norm output) of this rank's rows from its partial `d` over all rows (the
    /// input gradient of column-parallel layers): all-reduced in place, or reduce-scattered into `local`.
    func reduce(_ d: UnsafeMutablePointer<Float>, rows: Int, dim: Int, into local: UnsafeMutablePointer<Float>)
        -> UnsafePointer<Float>
    {
        guard let ops else { return UnsafePointer(d) }
        guard splitsRows else {
            ops.allReduce(d, count: rows * dim)
            return UnsafePointer(d)
        }
        ops.reduceScatter(d, into: local, countPerRank: rows / ops.size * dim)
        return UnsafePointer(local)
    }
}
