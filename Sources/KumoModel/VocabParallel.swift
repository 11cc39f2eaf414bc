import Foundation
import KumoCore

/// Softmax cross-entropy over logits split by vocabulary columns across the tensor group
/// (Megatron's vocabulary-parallel cross-entropy): each rank holds [rows, held.count] and the
/// full logits are never gathered; the row maxima, sums of exponentials and target logits are
/// reduced instead. Every rank returns the same loss.
public enum VocabParallelCrossEntropy {
    /// Replaces the local logits with ∂L/∂logits for L = gradScale · Σ token losses (rows whose
    /// target is -100 score nothing); returns the summed loss and the number of scored tokens, and
    /// each row's loss in `rowLosses` when given (0 for an ignored row).
    public static func forwardBackward(
        logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, held: Range<Int>,
        gradScale: Float, ops: any TensorParallelOps, rowLosses: UnsafeMutablePointer<Double>? = nil
    ) -> (lossSum: Double, count: Int) {
        let v = held.count
        let maxima = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: 2 * rows)
        defer {
            maxima.deallocate()
            sums.deallocate()
        }
        parallelFor(rows) { r in
            let row = logits + r * v
            var m = -Float.infinity
            for j in 0..<v { m = max(m, row[j]) }
            maxima[r] = m
        }
        ops.allReduceMax(maxima, count: rows)
        // sums[r]: Σ exp(logit - max) over this rank's columns; sums[rows + r]: the target logit if held.
        parallelFor(rows) { r in
            let row = logits + r * v
            let target = Int(targets[r])
            sums[rows + r] = held.contains(target) ? row[target - held.lowerBound] : 0
            var sum: Float = 0
            for j in 0..<v {
                let e = expf(row[j] - maxima[r])
                row[j] = e
                sum += e
            }
            sums[r] = sum
        }
        ops.allReduce(sums, count: 2 * rows)
        var total = 0.0
        var count = 0
        for r in 0..<rows {
            let row = logits + r * v
            let target = Int(targets[r])
            rowLosses?[r] = 0
            if target == -100 {
                row.update(repeating: 0, count: v)
                continue
            }
            let loss = Double(maxima[r]) + log(Double(sums[r])) - Double(sums[rows + r])
            rowLosses?[r] = loss
            total += loss
            count += 1
            let scale = gradScale / sums[r]
            for j in 0..<v { row[j] *= scale }
            if held.contains(target) { row[target - held.lowerBound] -= gradScale }
        }
        return (total, count)
    }
}
