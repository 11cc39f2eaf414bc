import KumoCore
import KumoModel

/// The number format of the weights used by decoding's matrix-vector products.
public enum WeightFormat: String, Sendable, CaseIterable {
    /// The model's fp32 weights.
    case fp32
    /// Q8_0-style blocks of 32 int8 weights with an fp32 scale (inputs quantized to int16 blocks).
    case int8
    /// bf16 weights and inputs with fp32 sums, on CPUs with AVX512_BF16 only.
    case bf16

    /// Whether this CPU runs the format's products.
    public var isSupported: Bool { self != .bf16 || BF16Matrix.supported }
}

/// One projection's weights for decoding: the fp32 matrix, and its Q8 (bf16) copy in int8 (bf16) mode.
struct DecodeMatrix {
    let fp32: UnsafePointer<Float>
    let q8: Q8Matrix?
    let bf16: BF16Matrix?
    let rows: Int
    let columns: Int

    init(_ w: UnsafePointer<Float>, rows: Int, columns: Int, format: WeightFormat) {
        fp32 = w
        self.rows = rows
        self.columns = columns
        q8 =
            format == .int8 && columns % Q8Matrix.blockSize == 0
            ? Q8Matrix(weights: w, rows: rows, columns: columns) : nil
        bf16 =
            format == .bf16 && columns % BF16Matrix.columnMultiple == 0
            ? BF16Matrix(weights: w, rows: rows, columns: columns) : nil
    }

    /// y (+)= x·Wᵀ for `count` rows of x.
    func apply(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool = false) {
        if let q8 {
            q8.apply(x: x, y: y, count: count, accumulate: accumulate)
        } else if let bf16 {
            bf16.apply(x: x, y: y, count: count, accumulate: accumulate)
        } else if count <= F32MatVec.maxInputRows {
            F32MatVec.apply(w: fp32, rows: rows, columns: columns, x: x, y: y, count: count, accumulate: accumulate)
        } else {
            Linear.forward(
                x: x, weight: fp32, y: y, rows: count, inFeatures: columns, outFeatures: rows, accumulate: accumulate)
        }
    }
}

/// The projections of one block for decoding, and the block's fp32 weights (its norms, and prefill's GEMMs).
struct DecodeBlock: BlockProjections {
    let weights: BlockWeights
    /// The block's matrices that go through `project`, in `BlockMatrix` order.
    private let matrices: [DecodeMatrix]

    init(_ w: BlockWeights, _ c: ModelConfig, format: WeightFormat) {
        weights = w
        matrices = Self.projected(c).map { m in
            let shape = m.shape(c)
            return DecodeMatrix(w[m], rows: shape.rows, columns: shape.columns, format: format)
        }
    }

    /// The matrices whose products go through `project`: all of a dense block; a mixture's attention
    /// only, as its router and experts run on the fp32 weights (`MixtureOfExperts`).
    static func projected(_ c: ModelConfig) -> [BlockMatrix] {
        c.isMoE ? [.q, .k, .v, .o] : BlockMatrix.allCases
    }

    /// Decoding's product with `matrix` (whose shape this block knows).
    func project(
        _ matrix: BlockMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int,
        outFeatures: Int, accumulate: Bool
    ) {
        matrices[matrix.rawValue].apply(x: x, y: y, count: rows, accumulate: accumulate)
    }
}
