import XCTest

@testable import KumoCore

final class BLASKernelsTests: XCTestCase {
    private let avx512: Set<String> = ["sse3", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"]

    func testAGenericFallbackOnAnAVX512CPUAsksForSkylakeXKernels() {
        XCTAssertEqual(BLASKernels.preferredCoreType(coreName: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(BLASKernels.preferredCoreType(coreName: "Nehalem", cpuFlags: avx512), "SkylakeX")
    }

    func testAGenericFallbackOnAnAVX2CPUAsksForHaswellKernels() {
        XCTAssertEqual(
            BLASKernels.preferredCoreType(coreName: "Prescott", cpuFlags: ["sse3", "avx", "avx2", "fma"]), "Haswell")
    }

    func testAKnownCoreOrACPUWithoutAVX2KeepsOpenBLASsChoice() {
        XCTAssertNil(BLASKernels.preferredCoreType(coreName: "Zen", cpuFlags: avx512))
        XCTAssertNil(BLASKernels.preferredCoreType(coreName: "SkylakeX", cpuFlags: avx512))
        XCTAssertNil(BLASKernels.preferredCoreType(coreName: "Prescott", cpuFlags: ["sse3", "avx"]))
    }

    func testThisMachinesFlagsAreRead() {
        XCTAssertTrue(BLASKernels.cpuFlags().contains("sse2"), "x86-64 always has sse2")
    }
}
