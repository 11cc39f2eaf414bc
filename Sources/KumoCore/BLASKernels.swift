import CBLAS
import Foundation

/// OpenBLAS's choice of kernels. Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise CPUs
/// newer than itself (Intel Sapphire Rapids; AMD Zen 4 under some hypervisors) and falls back to its
/// SSE3 "Prescott" kernels: sgemm 30 GFLOP/s instead of 160 on one Sapphire Rapids core. The kernels
/// are chosen when the library loads, from `OPENBLAS_CORETYPE`, so fixing the choice takes a re-exec.
public enum BLASKernels {
    /// The kernel family OpenBLAS chose when it loaded (`openblas_get_corename`).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's generic x86-64 kernel families: what it falls back to on a CPU it does not know.
    static let genericCores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom"]

    /// The `OPENBLAS_CORETYPE` that names faster kernels this CPU can run, when OpenBLAS chose a
    /// generic family (`coreName`) on a CPU with AVX-512 or AVX2 (`cpuFlags` as /proc/cpuinfo names
    /// them); nil when its choice stands.
    public static func preferredCoreType(coreName: String, cpuFlags: Set<String>) -> String? {
        guard genericCores.contains(coreName.lowercased()) else { return nil }
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(cpuFlags.contains) { return "SkylakeX" }
        if cpuFlags.contains("avx2") && cpuFlags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The CPU feature flags of the first processor in /proc/cpuinfo (empty where it cannot be read).
    public static func cpuFlags() -> Set<String> {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes this program with `OPENBLAS_CORETYPE` set when OpenBLAS fell back to generic
    /// kernels on a CPU that runs faster ones and the user has not set the variable; returns when
    /// there is nothing to do or the re-exec fails (the program then runs on as it is).
    public static func reexecWithFasterKernelsIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
            let coreType = preferredCoreType(coreName: coreName, cpuFlags: cpuFlags())
        else { return }
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
    }
}
