import Foundation

/// Facts about the machine the process runs on.
public enum SystemInfo {
    /// Physical memory in bytes.
    public static var physicalMemoryBytes: Int {
        Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Logical CPU cores available to this process.
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Peak resident set size of this process so far, in bytes: VmHWM from /proc (which,
    /// unlike getrusage's maxrss, does not carry over the high-water mark of the process
    /// that spawned this one), or getrusage where /proc is missing.
    public static var peakRSSBytes: Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        {
            return kib * 1024
        }
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    /// Seconds on a monotonic clock.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// The measured single-precision matrix-multiply peak: the best GFLOP/s of a square sgemm
/// on the current thread count. MFU is reported against this, not a datasheet number.
public enum SgemmPeak {
    /// The side of the measured product.
    public static let side = 1536

    /// Bytes the measurement allocates (three n×n matrices), freed when it returns.
    public static let scratchBytes = 3 * 4 * side * side

    /// Times `repeats` n×n×n products and returns the best rate in GFLOP/s.
    public static func measure(n: Int = side, repeats: Int = 8) -> Double {
        let a = FloatBuffer(count: n * n)
        let b = FloatBuffer(count: n * n)
        let c = FloatBuffer(count: n * n)
        var rng = SeededRandom(seed: 7)
        for i in 0..<(n * n) {
            a[i] = Float(rng.uniform() - 0.5)
            b[i] = Float(rng.uniform() - 0.5)
        }
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = SystemInfo.now()
            gemm(.none, .none, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            best = min(best, SystemInfo.now() - t0)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}
