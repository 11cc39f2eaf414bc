import Foundation

/// Softmax cross-entropy over rows of logits, with an ignore index.
public enum CrossEntropyKernel {
    /// Targets equal to this are not scored and get no gradient (PyTorch's default).
    public static let ignoreIndex: Int32 = -100

    /// Computes the summed loss over non-ignored rows and replaces `logits` in place by
    /// ∂L/∂logits where L = `gradScale` · Σ loss (e.g. 1/number of scored tokens).
    /// Returns the summed loss in Double and the number of scored rows; `rowLosses`, when given,
    /// receives each row's loss (0 for an ignored row).
    public static func forwardBackward(
        logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int,
        gradScale: Float, rowLosses: UnsafeMutablePointer<Double>? = nil
    ) -> (lossSum: Double, count: Int) {
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: rows)
        defer { losses.deallocate() }
        parallelFor(rows) { r in
            let row = logits + r * vocab
            let target = Int(targets[r])
            if target == Int(ignoreIndex) {
                row.update(repeating: 0, count: vocab)
                losses[r] = .nan
                return
            }
            precondition(target >= 0 && target < vocab, "target \(target) outside vocabulary")
            var mv = SIMD8<Float>(repeating: -.infinity)
            var j = 0
            while j + 8 <= vocab {
                let x = row.load8(j)
                mv.replace(with: x, where: x .> mv)
                j += 8
            }
            var m = mv.max()
            while j < vocab {
                m = max(m, row[j])
                j += 1
            }
            let targetLogit = row[target]
            var acc = SIMD8<Float>()
            j = 0
            while j + 8 <= vocab {
                let e = exp8(row.load8(j) - m)
                row.store8(j, e)
                acc += e
                j += 8
            }
            var sum = hsum(acc)
            while j < vocab {
                let e = expf(row[j] - m)
                row[j] = e
                sum += e
                j += 1
            }
            losses[r] = Double(m) + Foundation.log(Double(sum)) - Double(targetLogit)
            let scale = gradScale / sum
            j = 0
            while j + 8 <= vocab {
                row.store8(j, row.load8(j) * scale)
                j += 8
            }
            while j < vocab {
                row[j] *= scale
                j += 1
            }
            row[target] -= gradScale
        }
        var total = 0.0
        var count = 0
        for r in 0..<rows {
            rowLosses?[r] = losses[r].isNaN ? 0 : losses[r]
            guard !losses[r].isNaN else { continue }
            total += losses[r]
            count += 1
        }
        return (total, count)
    }

    /// Multiplies each of `rows` rows of `width` values by its factor in `scales` (a gradient of
    /// `forwardBackward` computed with scale 1, scaled per row afterwards).
    public static func scaleRows(
        _ values: UnsafeMutablePointer<Float>, rows: Int, width: Int, scales: UnsafePointer<Float>
    ) {
        parallelFor(rows) { r in
            let row = values + r * width
            let scale = scales[r]
            for j in 0..<width { row[j] *= scale }
        }
    }
}
