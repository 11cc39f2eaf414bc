import KumoCore
import KumoModel

extension DPOLoss {
    /// Replaces `logits` (the forward of `batch`, whose rows are pairs: chosen, then rejected) by
    /// ∂L/∂logits of L = gradScale · Σ pair losses, `reference(s)` giving pair `s`'s reference
    /// log-probabilities (chosen, rejected); adds the pairs' metrics to `sums` and returns the
    /// summed loss. Under tensor parallelism every rank of the group computes the same.
    public func lossGradient(
        model: LlamaModel, batch: Batch, logits: UnsafeMutablePointer<Float>, gradScale: Float,
        sums: inout DPOSums, reference: (Int) -> (chosen: Double, rejected: Double)
    ) -> Double {
        let logps = Self.sequenceLogps(model: model, batch: batch, logits: logits)
        let seqLen = batch.seqLen
        var scales = [Float](repeating: 0, count: batch.batch * seqLen)
        var lossSum = 0.0
        for s in 0..<batch.batch / 2 {
            let (chosen, rejected) = (logps[2 * s], logps[2 * s + 1])
            let ref = reference(s)
            let pair = self.pair(chosen: chosen, rejected: rejected, refChosen: ref.chosen, refRejected: ref.rejected)
            lossSum += pair.loss
            sums.add(pair, chosen: chosen, rejected: rejected)
            // A token's cross-entropy is −log p, so ∂L/∂(its loss) = −∂L/∂log π(its row).
            for (row, d) in [(2 * s, pair.dChosen), (2 * s + 1, pair.dRejected)] {
                let scale = Float(-d * Double(gradScale))
                for t in 0..<seqLen { scales[row * seqLen + t] = scale }
            }
        }
        CrossEntropyKernel.scaleRows(logits, rows: scales.count, width: model.logitsWidth, scales: scales)
        return lossSum
    }

    /// Each row's log-probability of its scored targets (summed), from the logits of `batch`'s
    /// forward, which become the gradient of the summed token losses (scale 1).
    public static func sequenceLogps(model: LlamaModel, batch: Batch, logits: UnsafeMutablePointer<Float>) -> [Double] {
        let n = batch.batch * batch.seqLen
        var losses = [Double](repeating: 0, count: n)
        batch.targets.withUnsafeBufferPointer { targets in
            losses.withUnsafeMutableBufferPointer { losses in
                _ = model.lossGradient(
                    logits: logits, targets: targets.baseAddress!, rows: n, gradScale: 1,
                    rowLosses: losses.baseAddress!)
            }
        }
        return (0..<batch.batch).map { r in -losses[r * batch.seqLen..<(r + 1) * batch.seqLen].reduce(0, +) }
    }
}
