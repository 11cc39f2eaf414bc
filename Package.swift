// swift-tools-version: 6.0
import PackageDescription

// Release builds generate AVX2/FMA code on x86-64 (Zen 3, Haswell and later): without it
// SIMD8<Float> arithmetic lowers to library calls and is slower than scalar code.
#if arch(x86_64)
    let cpuFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .release))]
#else
    let cpuFlags: [SwiftSetting] = []
#endif

let package = Package(
    name: "Kumo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kumo", targets: ["kumo"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.20.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Open MPI's handles are macros Swift cannot import: shim.h returns them from functions.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c"),
        // sentencepiece's C++ API behind an extern "C" header, so Swift needs no C++ interop. It links the
        // release that scripts/build_sentencepiece.sh (`make sentencepiece`) builds from PyPI's sdist into
        // .build/sentencepiece: sentencepiece, its trainer and abseil in one static archive.
        .target(
            name: "CSentencePiece",
            cxxSettings: [.headerSearchPath("../../.build/sentencepiece/include")],
            linkerSettings: [
                .unsafeFlags(["-L", Context.packageDirectory + "/.build/sentencepiece/lib"]),
                .linkedLibrary("kumo_sentencepiece"),
            ]),
        // bf16 products and conversions; oneDNN is loaded at run time (dlopen), so it is no build dependency.
        .target(
            name: "CKumoBF16",
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("dl")]),
        .target(name: "KumoCore", dependencies: ["CBLAS", "CKumoBF16"], swiftSettings: cpuFlags),
        .target(name: "KumoModel", dependencies: ["KumoCore"], swiftSettings: cpuFlags),
        .target(name: "KumoData", dependencies: ["KumoCore", "CSentencePiece", "CZlib"], swiftSettings: cpuFlags),
        .target(name: "KumoComm", dependencies: ["CMPI"], swiftSettings: cpuFlags),
        .target(
            name: "KumoParallel", dependencies: ["KumoCore", "KumoModel", "KumoComm"], swiftSettings: cpuFlags),
        .target(name: "KumoInterop", dependencies: ["KumoCore", "KumoModel", "KumoData"], swiftSettings: cpuFlags),
        .target(
            name: "KumoInference", dependencies: ["KumoCore", "KumoModel", "KumoData", "KumoInterop"],
            swiftSettings: cpuFlags),
        .target(
            name: "KumoEval", dependencies: ["KumoCore", "KumoModel", "KumoData", "KumoInterop", "KumoInference"],
            swiftSettings: cpuFlags),
        .target(
            name: "KumoServe",
            dependencies: [
                "KumoData", "KumoInference",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: cpuFlags),
        // The run registry: numbered runs in SQLite (GRDB) or PostgreSQL (PostgresNIO) and the dashboard.
        .target(
            name: "KumoPlan", dependencies: ["KumoCore", "KumoModel", "KumoParallel"],
            swiftSettings: cpuFlags),
        .target(
            name: "KumoRegistry",
            dependencies: [
                "KumoCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .target(
            name: "KumoTrain",
            dependencies: [
                "KumoCore", "KumoModel", "KumoData", "KumoInterop", "KumoComm", "KumoParallel", "KumoPlan", "CZlib",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: cpuFlags),
        .executableTarget(
            name: "kumo",
            dependencies: [
                "KumoCore", "KumoModel", "KumoData", "KumoComm", "KumoTrain", "KumoInterop", "KumoInference",
                "KumoEval", "KumoRegistry", "KumoPlan",
                "KumoServe", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuFlags),
        .testTarget(name: "KumoCoreTests", dependencies: ["KumoCore"], swiftSettings: cpuFlags),
        .testTarget(name: "KumoCommTests", dependencies: ["KumoComm", "KumoCore"], swiftSettings: cpuFlags),
        .testTarget(
            name: "KumoParallelTests", dependencies: ["KumoParallel", "KumoModel", "KumoComm"], swiftSettings: cpuFlags),
        .testTarget(name: "KumoDataTests", dependencies: ["KumoData"], exclude: ["Golden"], swiftSettings: cpuFlags),
        .testTarget(name: "KumoModelTests", dependencies: ["KumoModel"], swiftSettings: cpuFlags),
        .testTarget(
            name: "KumoPlanTests", dependencies: ["KumoPlan", "KumoParallel", "KumoModel", "KumoCore"],
            swiftSettings: cpuFlags),
        .testTarget(name: "KumoCLITests", swiftSettings: cpuFlags),
        .testTarget(name: "KumoRegistryTests", dependencies: ["KumoRegistry", "KumoCore"]),
        .testTarget(
            name: "KumoInteropTests", dependencies: ["KumoInterop", "KumoModel", "KumoCore", "KumoData"],
            exclude: ["Golden"],
            swiftSettings: cpuFlags),
        .testTarget(
            name: "KumoEvalTests", dependencies: ["KumoEval", "KumoInterop"], exclude: ["Golden"],
            swiftSettings: cpuFlags),
        .testTarget(
            name: "KumoInferenceTests",
            dependencies: ["KumoInference", "KumoModel", "KumoCore", "KumoData", "KumoInterop"],
            exclude: ["Golden"], swiftSettings: cpuFlags),
        .testTarget(
            name: "KumoTrainTests", dependencies: ["KumoTrain", "KumoData", "KumoInterop", "KumoPlan"],
            exclude: ["Golden"],
            swiftSettings: cpuFlags),
    ],
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
