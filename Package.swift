// swift-tools-version:6.0
import PackageDescription

// -O, not -Ounchecked: preconditions and overflow checks stay in the shipped library, so an
// inconsistent state traps instead of corrupting memory. The hot loops run on raw pointers,
// which -O does not bounds-check; measured with bench/model (small preset, 2 threads, fastest
// of 3 alternating rounds) -O was as fast: eval 42.9 vs 45.3 ms, train step 1.245 vs 1.264 s.
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-O", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "infp",
    products: [
        // libinfp.so: the C ABI of include/infp.h (see Makefile for the release link flags).
        .library(name: "infp", type: .dynamic, targets: ["INFP"]),
        .library(name: "INFPCore", targets: ["INFPCore"]),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"])]),
        // The public C header, shared with the @_cdecl layer so that types cannot drift.
        .target(name: "CINFP", path: "Sources/CINFP"),
        .target(name: "INFPCore", dependencies: ["CBLAS", "CFFTW"], swiftSettings: kernelFlags),
        .target(name: "INFP", dependencies: ["INFPCore", "CINFP"], exclude: ["exports.map"], swiftSettings: kernelFlags),
        .executableTarget(name: "infp-bench-ops", dependencies: ["INFPCore", "CBLAS"], path: "bench/ops", swiftSettings: kernelFlags),
        .executableTarget(name: "infp-bench-model", dependencies: ["INFPCore"], path: "bench/model", swiftSettings: kernelFlags),
        .testTarget(name: "INFPCoreTests", dependencies: ["INFPCore"]),
        .testTarget(name: "INFPTests", dependencies: ["INFP", "CINFP", "INFPCore"]),
    ],
    swiftLanguageModes: [.v5]
)
