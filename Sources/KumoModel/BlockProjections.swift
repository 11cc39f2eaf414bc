import KumoCore

/// The weight matrices of a decoder block.
public enum BlockMatrix: Int, CaseIterable, Sendable {
    case q, k, v, o, gate, up, down

    /// Output and input features of the matrix in a (whole) block of `c`.
    public func shape(_ c: ModelConfig) -> (rows: Int, columns: Int) {
        let qw = c.numAttentionHeads * c.headDim
        let kvw = c.numKeyValueHeads * c.headDim
        switch self {
        case .q: return (qw, c.hiddenSize)
        case .k, .v: return (kvw, c.hiddenSize)
        case .o: return (c.hiddenSize, qw)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }
}

/// The matrix products of a decoder block, y (+)= x·Wᵀ for each of its weights: the GEMMs of
/// training and prefill, or the matrix-vector kernels of decoding (fp32 or int8 weights).
public protocol BlockProjections {
    /// y (+)= x·Wᵀ for `rows` rows of x ([rows, inFeatures]) into y ([rows, outFeatures]), W the
    /// block's `matrix`; `accumulate` adds into y (residual connections).
    func project(
        _ matrix: BlockMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int,
        outFeatures: Int, accumulate: Bool)
}

extension BlockWeights: BlockProjections {
    /// The fp32 weights of `matrix`.
    public subscript(matrix: BlockMatrix) -> UnsafeMutablePointer<Float> {
        switch matrix {
        case .q: q
        case .k: k
        case .v: v
        case .o: o
        case .gate: gate
        case .up: up
        case .down: down
        }
    }

    /// `Linear.forward` with the weight, on its bf16 copy when products run in bf16.
    public func project(
        _ matrix: BlockMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int,
        outFeatures: Int, accumulate: Bool
    ) {
        let w = self[matrix]
        Linear.forward(
            x: x, weight: w, weightBF16: bf16(w), y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
            accumulate: accumulate)
    }
}
