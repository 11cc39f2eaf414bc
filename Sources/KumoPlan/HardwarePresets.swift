import KumoCore

/// Machines from public specifications. A datasheet gives peaks, not what a training step's GEMMs
/// reach: each preset assumes a fraction of the peak for large GEMMs (`gemmEfficiency`) and half of
/// the GEMM rate for attention; docs/planning.md lists the sources and these assumptions.
extension HardwareProfile {
    /// One rank's datasheet, turned into a profile.
    struct Datasheet {
        var name: String
        var source: String
        var cores: Int
        var ranksPerHost: Int
        var memoryGB: Double
        /// Peak TFLOP/s by precision.
        var peakTFLOPs: [Precision: Double]
        var gemmEfficiency: Double
        var threads: Int
        var memoryGBs: Double
        /// Bus bandwidth GB/s and latency µs inside a host and between hosts.
        var intra: (Double, Double)
        var inter: (Double, Double)

        var profile: HardwareProfile {
            let gemm = peakTFLOPs.sorted { $0.key.rawValue < $1.key.rawValue }.map { precision, peak in
                GEMMRates(
                    precision: precision.rawValue, threads: threads,
                    points: [GEMMPoint(m: 4096, n: 4096, k: 4096, gflops: 1000 * peak * gemmEfficiency)],
                    peakGFLOPs: 1000 * peak)
            }
            let attention = 1000 * (peakTFLOPs[.bf16] ?? peakTFLOPs[.fp32] ?? 0) * gemmEfficiency / 2
            return HardwareProfile(
                name: name, source: source, measured: false, coresPerHost: cores, ranksPerHost: ranksPerHost,
                memoryBytesPerRank: Int(memoryGB * 1e9), runtime: [RuntimePoint(ranks: 1, bytes: 1 << 30)], gemm: gemm,
                attention: [AttentionPoint(seq: 4096, threads: threads, gflops: attention)],
                memoryBandwidth: [BandwidthPoint(threads: threads, bytesPerSecond: memoryGBs * 1e9)],
                intraHost: Link(bandwidthBytesPerSecond: intra.0 * 1e9, latencySeconds: intra.1 * 1e-6),
                interHost: Link(bandwidthBytesPerSecond: inter.0 * 1e9, latencySeconds: inter.1 * 1e-6))
        }
    }

    /// The presets by name: `fugaku` (A64FX, TofuD), `frontier` (an MI250X GCD, Slingshot),
    /// `a100` and `h100` (8-GPU NVLink nodes on InfiniBand).
    public static let presets: [String: HardwareProfile] = Dictionary(
        uniqueKeysWithValues: [
            Datasheet(
                name: "fugaku",
                source: "A64FX: 48 compute cores at 2.2 GHz, 2×512-bit SVE FMA per core: 6.76 TFLOP/s fp32, "
                    + "13.5 fp16/bf16; 32 GiB HBM2 at 1,024 GB/s; TofuD 6.8 GB/s per link, 0.49 µs put latency; "
                    + "one rank per node",
                cores: 48, ranksPerHost: 1, memoryGB: 34.4, peakTFLOPs: [.fp32: 6.76, .bf16: 13.5],
                gemmEfficiency: 0.7, threads: 48, memoryGBs: 1024 * 0.8, intra: (100, 1), inter: (6.8, 0.49)),
            Datasheet(
                name: "frontier",
                source: "MI250X, one GCD per rank: 191.5 TFLOP/s bf16, 47.9 fp32 matrix; 64 GB HBM2e at "
                    + "1.6 TB/s; 8 GCDs per node on Infinity Fabric (50–100 GB/s between GCDs); Slingshot-11, "
                    + "4×25 GB/s per node (12.5 per GCD)",
                cores: 64, ranksPerHost: 8, memoryGB: 64, peakTFLOPs: [.fp32: 47.9, .bf16: 191.5],
                gemmEfficiency: 0.6, threads: 1, memoryGBs: 1600 * 0.8, intra: (50, 3), inter: (12.5, 4)),
            Datasheet(
                name: "a100",
                source: "A100 SXM 80GB: 312 TFLOP/s bf16, 19.5 fp32; 2.04 TB/s HBM2e; NVLink 3 (300 GB/s each "
                    + "way, ~230 GB/s NCCL bus bandwidth); 8 per node; HDR InfiniBand 200 Gb/s per GPU",
                cores: 128, ranksPerHost: 8, memoryGB: 80, peakTFLOPs: [.fp32: 19.5, .bf16: 312],
                gemmEfficiency: 0.75, threads: 1, memoryGBs: 2039 * 0.8, intra: (230, 5), inter: (22, 5)),
            Datasheet(
                name: "h100",
                source: "H100 SXM 80GB: 989 TFLOP/s bf16 dense, 67 fp32; 3.35 TB/s HBM3; NVLink 4 (450 GB/s "
                    + "each way, ~370 GB/s NCCL bus bandwidth); 8 per node; NDR InfiniBand 400 Gb/s per GPU",
                cores: 112, ranksPerHost: 8, memoryGB: 80, peakTFLOPs: [.fp32: 67, .bf16: 989],
                gemmEfficiency: 0.7, threads: 1, memoryGBs: 3350 * 0.8, intra: (370, 5), inter: (45, 5)),
        ].map { ($0.name, $0.profile) })
}
