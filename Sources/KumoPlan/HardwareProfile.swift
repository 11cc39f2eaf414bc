import Foundation
import KumoCore

/// What the planner knows of a machine: per rank (a CPU process or a GPU), GEMM rates by precision,
/// thread count and shape, attention and memory bandwidth; per host, cores and ranks; per link
/// class, bandwidth and latency. Measured by `kumo plan --calibrate` or taken from public
/// specifications (`HardwareProfile.presets`).
public struct HardwareProfile: Codable, Sendable, Equatable {
    /// A measured GEMM: C[m×n] += A[m×k]·B[k×n] at `gflops`.
    public struct GEMMPoint: Codable, Sendable, Equatable {
        public var m, n, k: Int
        public var gflops: Double
        public init(m: Int, n: Int, k: Int, gflops: Double) {
            (self.m, self.n, self.k, self.gflops) = (m, n, k, gflops)
        }
    }

    /// The GEMM rates of one precision at one thread count.
    public struct GEMMRates: Codable, Sendable, Equatable {
        public var precision: String
        public var threads: Int
        public var points: [GEMMPoint]
        /// The peak MFU counts against: the best measured rate, or a datasheet's.
        public var peakGFLOPs: Double
        public init(precision: String, threads: Int, points: [GEMMPoint], peakGFLOPs: Double? = nil) {
            (self.precision, self.threads, self.points) = (precision, threads, points)
            self.peakGFLOPs = peakGFLOPs ?? points.map(\.gflops).max() ?? 0
        }
    }

    /// Causal attention forward and backward at sequence length `seq`, counted as the model's
    /// 12·h·s FLOPs per token and layer.
    public struct AttentionPoint: Codable, Sendable, Equatable {
        public var seq: Int
        public var threads: Int
        public var gflops: Double
        public init(seq: Int, threads: Int, gflops: Double) {
            (self.seq, self.threads, self.gflops) = (seq, threads, gflops)
        }
    }

    /// Bytes per second one rank streams through memory with `threads` threads.
    public struct BandwidthPoint: Codable, Sendable, Equatable {
        public var threads: Int
        public var bytesPerSecond: Double
        public init(threads: Int, bytesPerSecond: Double) {
            (self.threads, self.bytesPerSecond) = (threads, bytesPerSecond)
        }
    }

    /// Resident bytes of a rank beside what the memory model counts, with `ranks` ranks on its host
    /// (Open MPI's shared-memory transport maps a segment per peer).
    public struct RuntimePoint: Codable, Sendable, Equatable {
        public var ranks: Int
        public var bytes: Int
        public init(ranks: Int, bytes: Int) { (self.ranks, self.bytes) = (ranks, bytes) }
    }

    /// A link class: ranks on one host (`intra_host`) or on different hosts (`inter_host`).
    public struct Link: Codable, Sendable, Equatable {
        /// Bytes per second one rank sends and receives at once (bus bandwidth).
        public var bandwidthBytesPerSecond: Double
        public var latencySeconds: Double
        public init(bandwidthBytesPerSecond: Double, latencySeconds: Double) {
            self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
            self.latencySeconds = latencySeconds
        }

        /// Seconds of one message of `bytes`.
        public func seconds(_ bytes: Double) -> Double {
            bytes > 0 ? latencySeconds + bytes / bandwidthBytesPerSecond : 0
        }
    }

    public var name: String
    /// Where the numbers come from.
    public var source: String
    /// Measured on this machine (`kumo plan --calibrate`): its ranks share one host and its memory.
    public var measured: Bool
    /// Cores of one host (CPU ranks share them: more threads than cores slow each rank).
    public var coresPerHost: Int
    /// Ranks a host runs by default (GPUs per node; for CPUs 1 per socket or core group).
    public var ranksPerHost: Int
    /// Memory one rank may use, bytes (a GPU's HBM; a CPU host's memory over its ranks).
    public var memoryBytesPerRank: Int
    /// Process overhead beside the model's buffers (runtime, libraries, MPI) by ranks on the host.
    public var runtime: [RuntimePoint]
    public var gemm: [GEMMRates]
    public var attention: [AttentionPoint]
    /// Memory bandwidth of one rank by thread count.
    public var memoryBandwidth: [BandwidthPoint]
    /// Bytes per second of pages handed back to the kernel and written again (ZeRO-3 releases the
    /// gathered stages and gathers into fresh pages every pass); nil: as fast as memory.
    public var pageFaultBytesPerSecond: Double?
    public var intraHost: Link
    public var interHost: Link

    public init(
        name: String, source: String, measured: Bool, coresPerHost: Int, ranksPerHost: Int, memoryBytesPerRank: Int,
        runtime: [RuntimePoint],
        gemm: [GEMMRates], attention: [AttentionPoint], memoryBandwidth: [BandwidthPoint], intraHost: Link,
        interHost: Link
    ) {
        self.name = name
        self.source = source
        self.measured = measured
        self.coresPerHost = coresPerHost
        self.ranksPerHost = ranksPerHost
        self.memoryBytesPerRank = memoryBytesPerRank
        self.runtime = runtime
        self.gemm = gemm
        self.attention = attention
        self.memoryBandwidth = memoryBandwidth
        self.intraHost = intraHost
        self.interHost = interHost
    }

    /// The thread count measured nearest `threads` (the larger on a tie).
    private static func nearest(_ counts: [Int], _ threads: Int) -> Int? {
        counts.min { (abs($0 - threads), -$0) < (abs($1 - threads), -$1) }
    }

    /// The rates of `precision` at the measured thread count nearest `threads`.
    func rates(_ precision: Precision, threads: Int) -> GEMMRates? {
        let same = gemm.filter { $0.precision == precision.rawValue }
        guard let t = Self.nearest(same.map(\.threads), threads) else { return nil }
        return same.first { $0.threads == t }
    }

    /// GFLOP/s of an m×n×k product: interpolated in log-size between the measured shapes around
    /// (m, the smaller of n and k), bilinear on a full grid, clamped at its edges.
    public func gemmGFLOPs(_ precision: Precision, threads: Int, m: Int, n: Int, k: Int) -> Double {
        guard let r = rates(precision, threads: threads), !r.points.isEmpty else { return 0 }
        let ms = Array(Set(r.points.map(\.m))).sorted()
        let ws = Array(Set(r.points.map { min($0.n, $0.k) })).sorted()
        func rate(_ pm: Int, _ pw: Int) -> Double? { r.points.first { $0.m == pm && min($0.n, $0.k) == pw }?.gflops }
        /// The grid values around `x` and the weight of the upper one.
        func around(_ grid: [Int], _ x: Int) -> (Int, Int, Double) {
            guard let upper = grid.firstIndex(where: { $0 >= x }), upper > 0 else {
                let edge = x <= grid[0] ? grid[0] : grid[grid.count - 1]
                return (edge, edge, 0)
            }
            let (a, b) = (grid[upper - 1], grid[upper])
            return (a, b, log2(Double(x) / Double(a)) / log2(Double(b) / Double(a)))
        }
        let (m0, m1, fm) = around(ms, m)
        let (w0, w1, fw) = around(ws, max(1, min(n, k)))
        guard let a = rate(m0, w0), let b = rate(m0, w1), let c = rate(m1, w0), let d = rate(m1, w1) else {
            return r.points.map(\.gflops).max() ?? 0
        }
        return (1 - fm) * ((1 - fw) * a + fw * b) + fm * ((1 - fw) * c + fw * d)
    }

    /// The peak MFU is counted against (`GEMMRates.peakGFLOPs`).
    public func peakGFLOPs(_ precision: Precision, threads: Int) -> Double {
        rates(precision, threads: threads)?.peakGFLOPs ?? 0
    }

    /// Attention GFLOP/s at `seq` (the measured length nearest in log-size).
    public func attentionGFLOPs(seq: Int, threads: Int) -> Double {
        guard let t = Self.nearest(attention.map(\.threads), threads) else { return 0 }
        let points = attention.filter { $0.threads == t }
        return points.min { abs(log2(Double($0.seq) / Double(seq))) < abs(log2(Double($1.seq) / Double(seq))) }!
            .gflops
    }

    /// Memory bandwidth at the measured thread count nearest `threads`, bytes per second.
    public func bandwidth(threads: Int) -> Double {
        let t = Self.nearest(memoryBandwidth.map(\.threads), threads)
        return memoryBandwidth.first { $0.threads == t }?.bytesPerSecond ?? 1e10
    }

    /// The runtime overhead of a rank with `ranks` on its host: linear between (and beyond) the
    /// two measured counts nearest it.
    public func runtimeBytes(ranksOnHost ranks: Int) -> Int {
        let points = runtime.sorted { $0.ranks < $1.ranks }
        guard let first = points.first else { return 0 }
        guard points.count > 1 else { return first.bytes }
        let upper = points.firstIndex { $0.ranks >= ranks }.map { max(1, $0) } ?? points.count - 1
        let (a, b) = (points[upper - 1], points[upper])
        guard b.ranks > a.ranks else { return max(0, a.bytes) }
        let slope = Double(b.bytes - a.bytes) / Double(b.ranks - a.ranks)
        return Int(min(max(0, Double(a.bytes) + slope * Double(ranks - a.ranks)), 1e15))
    }

    /// What a profile read from a file lacks for the time model to give finite times, if anything.
    public var missingMeasurement: String? {
        let rates = gemm.flatMap(\.points).map(\.gflops) + attention.map(\.gflops)
        let links = [intraHost, interHost].flatMap { [$0.bandwidthBytesPerSecond, $0.latencySeconds] }
        if gemm.allSatisfy({ $0.points.isEmpty }) { return "no GEMM rates" }
        if attention.isEmpty { return "no attention rates" }
        if memoryBandwidth.isEmpty { return "no memory bandwidth" }
        if !(rates + memoryBandwidth.map(\.bytesPerSecond)).allSatisfy({ $0 > 0 && $0.isFinite }) {
            return "a rate that is not a positive number"
        }
        if !links.allSatisfy({ $0 >= 0 && $0.isFinite }) || links[0] <= 0 || links[2] <= 0 {
            return "a link without a positive bandwidth"
        }
        return nil
    }
}
