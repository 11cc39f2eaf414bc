import CKumoBF16
import Foundation

/// The precision of training's matrix products (`train.precision`).
public enum Precision: String, Sendable, CaseIterable {
    /// fp32 operands and accumulation.
    case fp32
    /// bf16 operands with fp32 accumulation (fp32 master weights, norms, softmax and loss).
    case bf16
}

/// A zeroed array of bf16 values stored as `UInt16` (the upper half of an fp32), with
/// reference semantics; pages never written are not resident.
public final class BF16Buffer: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// Start of the storage; valid for `count` elements while the buffer lives.
    public let pointer: UnsafeMutablePointer<UInt16>

    /// Allocates `count` zeroed values.
    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        guard let raw = calloc(max(count, 1), 2) else { fatalError("out of memory allocating \(2 * count) bytes") }
        pointer = raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
    }

    deinit { free(pointer) }

    /// The values widened to fp32 (for tests and small reads).
    public var floats: [Float] { (0..<count).map { BF16.float(pointer[$0]) } }
}

/// Conversion between fp32 and bf16 (round to nearest even, as PyTorch's `.to(torch.bfloat16)`).
public enum BF16 {
    /// dst[i] = bf16(src[i]) for `count` elements.
    public static func round(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<UInt16>, count: Int) {
        kumo_bf16_round(src, dst, count)
    }

    /// The fp32 value of a bf16 (exact).
    @inline(__always)
    public static func float(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// `x` rounded to the nearest bf16, as fp32.
    public static func rounded(_ x: Float) -> Float {
        var x = x
        var b: UInt16 = 0
        kumo_bf16_round(&x, &b, 1)
        return float(b)
    }
}

/// A matrix operand of a bf16 product: fp32 (rounded to bf16 as it is used) or already bf16.
public enum BF16Operand {
    case fp32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)

    var c: kumo_bf16_operand {
        switch self {
        case .fp32(let p): return kumo_bf16_operand(f32: p, bf16: nil)
        case .bf16(let p): return kumo_bf16_operand(f32: nil, bf16: p)
        }
    }
}

/// How bf16 products run on this machine, chosen once per process.
public enum BF16GEMM {
    /// An implementation of the bf16 product.
    public enum Backend: String, Sendable, CaseIterable {
        /// oneDNN's `dnnl_gemm_bf16bf16f32` (PyTorch's CPU bf16 path), on AVX512_BF16 units.
        case onednn
        /// OpenBLAS sgemm on operands rounded to bf16 and widened to fp32: the same products
        /// (a product of two bf16 values is exact in fp32), on any CPU.
        case widened

        var c: kumo_bf16_backend { self == .onednn ? KUMO_BF16_ONEDNN : KUMO_BF16_WIDENED }
    }

    /// Whether this CPU has bf16 dot-product units (AVX512_BF16).
    public static var cpuHasBF16Units: Bool { kumo_cpu_has_avx512_bf16() != 0 }

    /// Whether the oneDNN backend can run here: bf16 units and libdnnl.so.2 present.
    public static var oneDNNAvailable: Bool { cpuHasBF16Units && kumo_onednn_available() != 0 }

    /// The backend in use and a line saying why: `KUMO_BF16_GEMM` (onednn|widened) if set and
    /// possible, else the faster of the two on a measured product where both can run.
    public static let selection: (backend: Backend, reason: String) = select()

    /// The backend in use.
    public static var backend: Backend { selection.backend }

    private static func select() -> (Backend, String) {
        let forced = ProcessInfo.processInfo.environment["KUMO_BF16_GEMM"].flatMap(Backend.init(rawValue:))
        guard cpuHasBF16Units else {
            return (
                .widened,
                "this CPU has no bf16 units (AVX512_BF16): bf16 products run as fp32 sgemm on bf16-rounded "
                    + "operands (the same results, no speed-up)"
            )
        }
        guard oneDNNAvailable else {
            return (
                .widened,
                "libdnnl.so.2 not found (apt install libdnnl2): bf16 products run as fp32 sgemm on "
                    + "bf16-rounded operands (the same results, no speed-up)"
            )
        }
        if let forced { return (forced, "bf16 GEMM \(forced.rawValue), set by KUMO_BF16_GEMM") }
        let onednn = measure(.onednn, n: 768, repeats: 3)
        let widened = measure(.widened, n: 768, repeats: 3)
        let pick: Backend = onednn >= widened ? .onednn : .widened
        return (
            pick,
            String(
                format: "bf16 GEMM %@ (measured %.1f GFLOP/s oneDNN, %.1f GFLOP/s widened sgemm)", pick.rawValue,
                onednn, widened)
        )
    }

    /// Bytes the measurement allocates (a bf16 operand and an fp32 product), freed when it returns.
    public static let measurementScratchBytes = (2 + 4) * SgemmPeak.side * SgemmPeak.side

    /// The best GFLOP/s of `repeats` n×n×n bf16 products with `backend` on the current thread
    /// count, operands already in bf16: the peak MFU is measured against in bf16.
    public static func measure(_ backend: Backend? = nil, n: Int = SgemmPeak.side, repeats: Int = 8) -> Double {
        let a = BF16Buffer(count: n * n)
        let c = FloatBuffer(count: n * n)
        var rng = SeededRandom(seed: 7)
        for i in 0..<(n * n) { c[i] = Float(rng.uniform() - 0.5) }
        BF16.round(c.pointer, into: a.pointer, count: n * n)
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = SystemInfo.now()
            gemmBF16(
                .none, .none, m: n, n: n, k: n, a: .bf16(a.pointer), lda: n, b: .bf16(a.pointer), ldb: n,
                c: c.pointer, ldc: n, backend: backend ?? self.backend)
            best = min(best, SystemInfo.now() - t0)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}

/// C[m×n] = op(A)[m×k] · op(B)[k×n] + beta · C, row-major, with bf16 operands (fp32 ones are
/// rounded to bf16 first) and fp32 accumulation.
public func gemmBF16(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, a: BF16Operand, lda: Int, b: BF16Operand,
    ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, backend: BF16GEMM.Backend = BF16GEMM.backend
) {
    let status = kumo_gemm_bf16(
        backend.c, transA == .transposed ? 1 : 0, transB == .transposed ? 1 : 0, m, n, k, a.c, lda, b.c, ldb, beta,
        c, ldc)
    // Only a failed allocation or a oneDNN error on a backend the selection found working get here.
    precondition(status == 0, "bf16 GEMM (\(backend.rawValue)) failed with status \(status)")
}
