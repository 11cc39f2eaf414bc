import Foundation
import KumoCore

/// Measures this machine for the planner (`kumo plan --calibrate`): Kumo's own GEMMs (fp32, and
/// bf16 where the CPU has the units) over a grid of shapes, its flash-attention kernel forward and
/// backward, a memory copy and writes into released pages, each at 1, 2, 4, ... threads up to the
/// cores. (The links between ranks are measured by the command, which has ranks.)
public enum Calibration {
    /// The GEMM grid: rows m (a micro-batch's tokens) by the n = k sizes of the projections.
    static let rows = [32, 128, 512, 1024, 2048, 4096]
    static let widths = [64, 256, 1024, 2048]
    static let sequences = [128, 512, 2048]

    /// Thread counts measured: powers of two below the cores, and the cores.
    static func threadCounts(cores: Int) -> [Int] {
        Array(Set(sequence(first: 1) { $0 * 2 }.prefix { $0 < cores } + [cores])).sorted()
    }

    /// Median seconds of `repeats` calls after one untimed call: what a training step sustains, where
    /// the best call catches a quiet moment of a shared machine.
    static func typical(_ repeats: Int, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = SystemInfo.now()
            body()
            times.append(SystemInfo.now() - t0)
        }
        return times.sorted()[times.count / 2]
    }

    /// GEMM rates of `precision` at `threads` over the grid.
    static func gemm(_ precision: Precision, threads: Int) -> HardwareProfile.GEMMRates {
        Threads.set(threads)
        var points: [HardwareProfile.GEMMPoint] = []
        for m in rows {
            for w in widths {
                let a = FloatBuffer(count: m * w)
                let b = FloatBuffer(count: w * w)
                let c = FloatBuffer(count: m * w)
                for i in 0..<a.count { a[i] = Float(i % 7) * 0.1 }
                for i in 0..<b.count { b[i] = Float(i % 5) * 0.1 }
                let repeats = max(5, min(40, 400_000_000 / (2 * m * w * w)))
                let seconds = typical(repeats) {
                    if precision == .bf16 {
                        gemmBF16(
                            .none, .none, m: m, n: w, k: w, a: .fp32(a.pointer), lda: w, b: .fp32(b.pointer), ldb: w,
                            c: c.pointer, ldc: w)
                    } else {
                        KumoCore.gemm(
                            .none, .none, m: m, n: w, k: w, a: a.pointer, lda: w, b: b.pointer, ldb: w, c: c.pointer,
                            ldc: w)
                    }
                }
                points.append(.init(m: m, n: w, k: w, gflops: 2 * Double(m * w * w) / seconds / 1e9))
            }
        }
        return .init(precision: precision.rawValue, threads: threads, points: points)
    }

    /// Attention forward and backward (8 heads of 64, causal) at each measured length.
    static func attention(threads: Int) -> [HardwareProfile.AttentionPoint] {
        Threads.set(threads)
        return sequences.map { t in
            let shape = AttentionShape(batch: 1, seqLen: t, heads: 8, kvHeads: 8, headDim: 64)
            let n = t * 8 * 64
            let (q, k, v, out, dout) = (
                FloatBuffer(count: n), FloatBuffer(count: n), FloatBuffer(count: n), FloatBuffer(count: n),
                FloatBuffer(count: n)
            )
            let (dq, dk, dv, lse) = (
                FloatBuffer(count: n), FloatBuffer(count: n), FloatBuffer(count: n), FloatBuffer(count: 8 * t)
            )
            for i in 0..<n { (q[i], k[i], v[i], dout[i]) = (Float(i % 11) * 0.01, Float(i % 13) * 0.01, 0.5, 0.1) }
            let seconds = typical(5) {
                AttentionKernel.forward(
                    q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer, shape: shape)
                AttentionKernel.backward(
                    dout: dout.pointer, q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer,
                    dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, shape: shape)
            }
            // The model's count: 12·h·s FLOPs per token and layer, h = heads × head size.
            return .init(seq: t, threads: threads, gflops: 12 * 512 * Double(t) * Double(t) / seconds / 1e9)
        }
    }

    /// Bytes per second of copying 256 MiB, split over `threads`.
    static func bandwidth(threads: Int) -> HardwareProfile.BandwidthPoint {
        Threads.set(threads)
        let count = 64 << 20
        let (source, destination) = (FloatBuffer(count: count), FloatBuffer(count: count))
        for i in stride(from: 0, to: count, by: 1024) { source[i] = 1 }
        let chunk = (count + threads - 1) / threads
        let seconds = typical(5) {
            parallelFor(threads) { p in
                let lower = p * chunk
                let upper = min(count, lower + chunk)
                if upper > lower {
                    (destination.pointer + lower).update(from: source.pointer + lower, count: upper - lower)
                }
            }
        }
        // A copy reads and writes every byte.
        return .init(threads: threads, bytesPerSecond: 2 * 4 * Double(count) / seconds)
    }

    /// Bytes per second of writing 64 MiB whose pages were just handed back (`MADV_DONTNEED`).
    static func pageFaults() -> Double {
        let count = 16 << 20
        let buffer = FloatBuffer(count: count)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let seconds = typical(5) {
            madvise(UnsafeMutableRawPointer(buffer.pointer), 4 * count / page * page, MADV_DONTNEED)
            buffer.pointer.update(repeating: 1, count: count)
        }
        return 4 * Double(count) / seconds
    }

    /// Measures the compute side of this machine; `progress` hears each finished part.
    public static func measureCompute(cores: Int = SystemInfo.cores, progress: (String) -> Void) -> HardwareProfile {
        let counts = threadCounts(cores: cores)
        var gemms: [HardwareProfile.GEMMRates] = []
        var attention: [HardwareProfile.AttentionPoint] = []
        var bandwidths: [HardwareProfile.BandwidthPoint] = []
        let precisions: [Precision] = BF16GEMM.cpuHasBF16Units ? [.fp32, .bf16] : [.fp32]
        for threads in counts {
            for precision in precisions {
                gemms.append(gemm(precision, threads: threads))
                progress(
                    "\(precision.rawValue) GEMM at \(threads) threads: best \(Int(gemms.last!.peakGFLOPs)) GFLOP/s")
            }
            attention += Calibration.attention(threads: threads)
            bandwidths.append(bandwidth(threads: threads))
            progress(
                String(
                    format: "attention and memory at %d threads: %.1f GB/s", threads,
                    bandwidths.last!.bytesPerSecond / 1e9))
        }
        let link = HardwareProfile.Link(bandwidthBytesPerSecond: 1e9, latencySeconds: 1e-5)
        Threads.set(1)
        let faults = pageFaults()
        progress(String(format: "writing released pages: %.1f GB/s", faults / 1e9))
        var profile = HardwareProfile(
            name: "local",
            source: "measured by kumo plan --calibrate on \(ProcessInfo.processInfo.hostName), "
                + "\(cores) cores, \(ISO8601DateFormatter().string(from: Date()))",
            measured: true, coresPerHost: cores, ranksPerHost: cores,
            memoryBytesPerRank: SystemInfo.physicalMemoryBytes,
            runtime: [], gemm: gemms, attention: attention, memoryBandwidth: bandwidths,
            intraHost: link, interHost: link)
        profile.pageFaultBytesPerSecond = faults
        return profile
    }
}
