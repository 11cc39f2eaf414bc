import KumoCore

/// A bias-free linear layer y = x·Wᵀ with W stored [out, in] as in PyTorch.
public enum Linear {
    /// y (+)= x·Wᵀ for `rows` rows; `accumulate` adds into y (residual connections).
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int,
        inFeatures: Int, outFeatures: Int, accumulate: Bool = false
    ) {
        gemm(
            .none, .transposed, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: weight,
            ldb: inFeatures, beta: accumulate ? 1 : 0, c: y, ldc: outFeatures)
    }

    /// dW += dyᵀ·x and dx (+)= dy·W.
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int,
        outFeatures: Int, accumulateDx: Bool = false
    ) {
        gemm(
            .transposed, .none, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures, b: x,
            ldb: inFeatures, beta: 1, c: dweight, ldc: inFeatures)
        gemm(
            .none, .none, m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures, b: weight,
            ldb: inFeatures, beta: accumulateDx ? 1 : 0, c: dx, ldc: inFeatures)
    }
}

/// Token embedding: a lookup of rows of a [vocab, hidden] table.
public enum Embedding {
    /// out[r] = table[ids[r]].
    public static func forward(
        ids: UnsafePointer<Int32>, table: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int,
        dim: Int, vocab: Int
    ) {
        for r in 0..<rows {
            let id = Int(ids[r])
            precondition(id >= 0 && id < vocab, "token id \(id) outside the vocabulary of \(vocab)")
            (out + r * dim).update(from: table + id * dim, count: dim)
        }
    }

    /// dtable[ids[r]] += dout[r], serially so repeated ids add up deterministically.
    public static func backward(
        ids: UnsafePointer<Int32>, dout: UnsafePointer<Float>, dtable: UnsafeMutablePointer<Float>, rows: Int,
        dim: Int
    ) {
        for r in 0..<rows {
            let dst = dtable + Int(ids[r]) * dim
            let src = dout + r * dim
            for j in 0..<dim { dst[j] += src[j] }
        }
    }
}
