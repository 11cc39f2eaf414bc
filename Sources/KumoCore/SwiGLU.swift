import Foundation

/// SwiGLU activation: s = silu(gate) · up, elementwise.
public enum SwiGLUKernel {
    /// s = gate · sigmoid(gate) · up over `count` elements.
    public static func forward(
        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
        count: Int
    ) {
        chunked(count) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let g = gate.load8(i)
                let sig = 1 / (1 + exp8(-g))
                out.store8(i, g * sig * up.load8(i))
                i += 8
            }
            while i < hi {
                let g = gate[i]
                out[i] = g / (1 + expf(-g)) * up[i]
                i += 1
            }
        }
    }

    /// Gradients of the gate and up inputs given ds; may write dgate over `ds`.
    public static func backward(
        ds: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, count: Int
    ) {
        chunked(count) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let g = gate.load8(i)
                let d = ds.load8(i)
                let sig = 1 / (1 + exp8(-g))
                let silu = g * sig
                dup.store8(i, d * silu)
                dgate.store8(i, d * up.load8(i) * sig * (1 + g * (1 - sig)))
                i += 8
            }
            while i < hi {
                let g = gate[i]
                let d = ds[i]
                let sig = 1 / (1 + expf(-g))
                dup[i] = d * g * sig
                dgate[i] = d * up[i] * sig * (1 + g * (1 - sig))
                i += 1
            }
        }
    }
}

/// Runs `body(lo, hi)` over SIMD-aligned ranges of 0..<count of at least 4096 elements each, in parallel.
func chunked(_ count: Int, _ body: (Int, Int) -> Void) {
    parallelChunks(count, tasks: min(Threads.current * tasksPerThread, count / 4096), align: 8, body)
}
