@testable import KumoPlan

extension HardwareProfile {
    /// A machine with one rate for everything: 100 GFLOP/s GEMMs and attention, 10 GB/s memory,
    /// links of 1 GB/s and 10 µs, 8 cores and ranks per host.
    static let flat = HardwareProfile(
        name: "flat", source: "test", measured: false, coresPerHost: 8, ranksPerHost: 8, memoryBytesPerRank: 1 << 34,
        runtime: [.init(ranks: 1, bytes: 0)],
        gemm: [.init(precision: "fp32", threads: 1, points: [.init(m: 64, n: 64, k: 64, gflops: 100)])],
        attention: [.init(seq: 64, threads: 1, gflops: 100)],
        memoryBandwidth: [.init(threads: 1, bytesPerSecond: 1e10)],
        intraHost: .init(bandwidthBytesPerSecond: 1e9, latencySeconds: 1e-5),
        interHost: .init(bandwidthBytesPerSecond: 1e9, latencySeconds: 1e-5))
}
