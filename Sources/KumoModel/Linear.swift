import KumoCore

/// A bias-free linear layer y = x·Wᵀ with W stored [out, in] as in PyTorch. Given the weight's
/// bf16 copy, its products run in bf16 with fp32 accumulation (activations rounded to bf16 as
/// they enter a product); outputs and weight gradients stay fp32.
public enum Linear {
    /// y (+)= x·Wᵀ for `rows` rows; `accumulate` adds into y (residual connections).
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, weightBF16: UnsafePointer<UInt16>? = nil,
        y: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false
    ) {
        let beta: Float = accumulate ? 1 : 0
        if let weightBF16 {
            gemmBF16(
                .none, .transposed, m: rows, n: outFeatures, k: inFeatures, a: .fp32(x), lda: inFeatures,
                b: .bf16(weightBF16), ldb: inFeatures, beta: beta, c: y, ldc: outFeatures)
            return
        }
        gemm(
            .none, .transposed, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: weight,
            ldb: inFeatures, beta: beta, c: y, ldc: outFeatures)
    }

    /// dW += dyᵀ·x and dx (+)= dy·W.
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        weightBF16: UnsafePointer<UInt16>? = nil, dx: UnsafeMutablePointer<Float>,
        dweight: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, accumulateDx: Bool = false
    ) {
        let beta: Float = accumulateDx ? 1 : 0
        if let weightBF16 {
            gemmBF16(
                .transposed, .none, m: outFeatures, n: inFeatures, k: rows, a: .fp32(dy), lda: outFeatures,
                b: .fp32(x), ldb: inFeatures, beta: 1, c: dweight, ldc: inFeatures)
            gemmBF16(
                .none, .none, m: rows, n: inFeatures, k: outFeatures, a: .fp32(dy), lda: outFeatures,
                b: .bf16(weightBF16), ldb: inFeatures, beta: beta, c: dx, ldc: inFeatures)
            return
        }
        gemm(
            .transposed, .none, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures, b: x,
            ldb: inFeatures, beta: 1, c: dweight, ldc: inFeatures)
        gemm(
            .none, .none, m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures, b: weight,
            ldb: inFeatures, beta: beta, c: dx, ldc: inFeatures)
    }
}

/// Token embedding: a lookup of rows of a [vocab, hidden] table, or of the rows `held` of it
/// (Megatron's vocabulary-parallel embedding: tokens outside them give zero rows, which the sum
/// over the tensor group fills in).
public enum Embedding {
    /// out[r] = table[ids[r] - held.lowerBound] if the table holds the id, else zero; `held` is
    /// the whole vocabulary unless given.
    public static func forward(
        ids: UnsafePointer<Int32>, table: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int,
        dim: Int, vocab: Int, held: Range<Int>? = nil
    ) {
        let held = held ?? 0..<vocab
        parallelFor(rows) { r in
            let id = Int(ids[r])
            precondition(id >= 0 && id < vocab, "token id \(id) outside the vocabulary of \(vocab)")
            if held.contains(id) {
                (out + r * dim).update(from: table + (id - held.lowerBound) * dim, count: dim)
            } else {
                (out + r * dim).update(repeating: 0, count: dim)
            }
        }
    }

    /// dtable[ids[r] - held.lowerBound] += dout[r] for the ids the table holds (all of them
    /// unless `held` is given); threads split the columns and add the rows in order, so repeated
    /// ids add up the same on any number of threads.
    public static func backward(
        ids: UnsafePointer<Int32>, dout: UnsafePointer<Float>, dtable: UnsafeMutablePointer<Float>, rows: Int,
        dim: Int, held: Range<Int>? = nil
    ) {
        parallelColumns(dim) { lo, hi in
            for r in 0..<rows {
                let id = Int(ids[r])
                if let held, !held.contains(id) { continue }
                let dst = dtable + (id - (held?.lowerBound ?? 0)) * dim
                let src = dout + r * dim
                for j in lo..<hi { dst[j] += src[j] }
            }
        }
    }
}
