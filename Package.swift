// swift-tools-version: 6.1
//
// Vireo: virtual machine disks and NICs that live on another host, with RDMA
// moving data straight between guest memory and that host.
//
// Library split (see README "Architecture"):
//   CVireoVerbs   C module over <infiniband/verbs.h> and <rdma/rdma_cma.h>,
//                 with shims for what Swift cannot import (macros).
//   VireoSys      POSIX conventions wrapped once: typed errors, owned fds,
//                 eventfd, mmap, memfd, poll, OS threads, the lock (Locked).
//   VireoFabric   The Swift verbs layer: devices, PDs, MRs, CQs, rdma_cm
//                 listener/connector, batched work requests, fabric probe.
//   Virtio        Split/packed virtqueues over guest memory (no RDMA).
//   VhostUser     The vhost-user backend protocol and device runtime.
//   CVireoUring   C module over liburing (shims for its static-inline helpers).
//   CVireoRBD / VireoRBD  librados + librbd (RBD exports): cluster connections,
//                 images, asynchronous I/O polled on the export's worker.
//   VireoTargetCore   Small pieces both target engines share (work ids, index rings).
//   VireoPacketTarget Packet endpoints: named L2 networks (switch, ports, TAP uplink).
//   VireoBench    Benchmarks: vhost-user load generators (virtio-blk, virtio-net)
//                 and the report (tables and SVG plots) from one lab boot.
//   VireoBlockTarget  The target daemon: exports (file, block device, memory)
//                 served as block endpoints over RDMA, storage I/O via io_uring.
//   VireoFuzz     libFuzzer harness bodies (Fuzz/Harnesses) and their seed
//                 inputs; the Fuzz* executables (Fuzz/<Name>/main.swift) run
//                 them under libFuzzer when built by deploy/fuzz/run, and
//                 replay input files in an ordinary build.
import PackageDescription

let package = Package(
    name: "Vireo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vireo-target", targets: ["vireo-target"]),
        .executable(name: "vireo-initiator", targets: ["vireo-initiator"]),
        .executable(name: "vireo-bench", targets: ["vireo-bench"]),
        .executable(name: "vireoctl", targets: ["vireoctl"]),
        .library(name: "VireoFabric", targets: ["VireoFabric"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "CVireoVerbs",
            linkerSettings: [.linkedLibrary("ibverbs"), .linkedLibrary("rdmacm")]
        ),
        .target(name: "CVireoSys"),
        .target(name: "CVireoUring", linkerSettings: [.linkedLibrary("uring")]),
        // The io_uring wrapper and the storage calls beside it (fallocate, O_DIRECT, BLKGETSIZE64).
        .target(name: "VireoUring", dependencies: ["CVireoUring", "VireoSys"]),
        // librados/librbd (Debian's librbd-dev) for RBD exports: the cluster connection, images and
        // their asynchronous I/O, completions polled on the export's worker.
        .target(name: "CVireoRBD", linkerSettings: [.linkedLibrary("rbd"), .linkedLibrary("rados")]),
        .target(name: "VireoRBD", dependencies: ["CVireoRBD", "VireoSys"]),
        .target(
            name: "VireoSys",
            dependencies: ["CVireoSys", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "VireoFabric",
            dependencies: [
                "CVireoVerbs", "CVireoSys", "VireoSys",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "VireoWire"),
        // The connection handshake's cryptography: names, HMAC-SHA-256 proofs over both nonces
        // and the connect parameters, the target's access policy (docs/security.md).
        .target(
            name: "VireoAuth",
            dependencies: ["VireoWire", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Daemon plumbing both daemons share, above the POSIX floor: the one ConfigError and
        // the configuration readers (flags, TOML), the stats file (Prometheus text), termination signals.
        .target(
            name: "VireoDaemon",
            dependencies: ["VireoSys", "VireoWire", "VireoAuth", .product(name: "Logging", package: "swift-log"),
                           .product(name: "TOMLKit", package: "TOMLKit"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(
            name: "VireoTargetCore",
            dependencies: ["VireoSys", "VireoFabric", "VireoWire", "VireoAuth", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "VireoPacketTarget",
            dependencies: [
                "VireoFabric", "VireoWire", "VireoAuth", "VireoSys", "VireoDaemon", "VireoTargetCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "VireoBlockTarget",
            dependencies: [
                "VireoFabric", "VireoWire", "VireoAuth", "VireoSys", "VireoDaemon", "VireoUring", "VireoRBD", "VireoTargetCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The target daemon: configuration, admission, the accept path and stats for both
        // endpoint kinds, which stand side by side below it.
        .target(
            name: "VireoTarget",
            dependencies: [
                "VireoBlockTarget", "VireoPacketTarget", "VireoTargetCore", "VireoDaemon", "VireoFabric", "VireoWire",
                "VireoAuth", "VireoSys",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Virtio", dependencies: ["VireoSys"]),
        .target(name: "VirtioDriver", dependencies: ["Virtio", "VireoSys"]),
        .target(
            name: "VhostUser",
            dependencies: ["Virtio", "VireoSys", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "VhostUserFrontend",
            dependencies: ["VhostUser", "Virtio", "VirtioDriver", "VireoSys"]
        ),
        .target(
            name: "VireoInitiator",
            dependencies: [
                "VhostUser", "Virtio", "VireoFabric", "VireoWire", "VireoAuth", "VireoSys", "VireoDaemon",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VireoBench",
            dependencies: [
                "VireoDaemon",
                "VhostUser", "VhostUserFrontend", "Virtio", "VirtioDriver", "VireoSys",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "vireo-bench",
            dependencies: [
                "VireoDaemon",
                "VireoBench", "VireoSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench"
        ),
        // What the executables share on the command line: the gen-key subcommand.
        .target(
            name: "VireoCommandLine",
            dependencies: ["VireoDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "vireo-target",
            dependencies: [
                "VireoFabric", "VireoSys", "VireoDaemon", "VireoTarget", "VireoBlockTarget", "VireoPacketTarget",
                "VireoCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "target"
        ),
        .executableTarget(
            name: "vireo-initiator",
            dependencies: [
                "VireoDaemon",
                "VireoFabric", "VireoSys", "VhostUser", "VireoInitiator", "VireoCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "initiator"
        ),
        // The operators' CLI over both daemons' control APIs (docs/api.md).
        .executableTarget(
            name: "vireoctl",
            dependencies: ["VireoDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "ctl"
        ),
        // Fuzzing (deploy/fuzz/README.md). The harness library and the thin
        // executables build without any fuzzer flag (they then replay files);
        // deploy/fuzz/run builds them with -sanitize=fuzzer,address -DVIREO_LIBFUZZER.
        .target(name: "CVireoFuzz", path: "Fuzz/CVireoFuzz"),
        .target(
            name: "VireoFuzz",
            dependencies: ["CVireoFuzz", "CVireoSys", "VireoWire", "Virtio", "VhostUser", "VireoSys", "VireoPacketTarget",
                           .product(name: "Logging", package: "swift-log")],
            path: "Fuzz/Harnesses"
        ),
        .executableTarget(name: "FuzzWire", dependencies: ["VireoFuzz", "CVireoFuzz"], path: "Fuzz/FuzzWire"),
        .executableTarget(name: "FuzzVirtqueue", dependencies: ["VireoFuzz", "CVireoFuzz"], path: "Fuzz/FuzzVirtqueue"),
        .executableTarget(name: "FuzzVhostUser", dependencies: ["VireoFuzz", "CVireoFuzz"], path: "Fuzz/FuzzVhostUser"),
        .executableTarget(name: "FuzzVhostUserSession", dependencies: ["VireoFuzz", "CVireoFuzz"],
                          path: "Fuzz/FuzzVhostUserSession"),
        .executableTarget(name: "FuzzPacketSwitch", dependencies: ["VireoFuzz", "CVireoFuzz"], path: "Fuzz/FuzzPacketSwitch"),
        // What the test targets share: the RDMA test environment, the check for refused configurations,
        // and the fake verbs layer.
        .target(name: "VireoTestSupport", dependencies: ["VireoFabric", "VireoDaemon", "VireoSys", "VireoAuth", "VireoWire"],
                path: "Tests/VireoTestSupport"),
        .testTarget(name: "VireoSysTests", dependencies: ["VireoSys"]),
        .testTarget(name: "VireoDaemonTests", dependencies: ["VireoDaemon", "VireoSys", "VireoCommandLine", "VireoTestSupport",
                                                        .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VireoWireTests", dependencies: ["VireoWire"]),
        .testTarget(name: "VireoAuthTests", dependencies: ["VireoAuth", "VireoWire"]),
        .testTarget(name: "VireoFuzzTests", dependencies: ["VireoFuzz"]),
        .testTarget(name: "VirtioTests", dependencies: ["Virtio", "VirtioDriver", "VireoSys"]),
        .testTarget(
            name: "VhostUserTests",
            dependencies: ["VhostUser", "VhostUserFrontend", "Virtio", "VirtioDriver", "VireoSys"]
        ),
        .testTarget(name: "VireoFabricTests", dependencies: ["VireoTestSupport", "VireoFabric", "VireoSys", "CVireoVerbs"]),
        .testTarget(
            name: "VireoInitiatorTests",
            dependencies: ["VireoAuth", "VireoTestSupport", "VireoTarget", "VireoDaemon", "VireoInitiator", "VireoBlockTarget", "VhostUser", "VhostUserFrontend", "Virtio",
                           "VirtioDriver", "VireoFabric", "VireoWire", "VireoSys"]
        ),
        .testTarget(
            name: "VireoBlockTargetTests",
            dependencies: ["VireoInitiator", "VireoAuth", "VireoTestSupport", "VireoTarget", "VireoDaemon", "VireoBlockTarget", "VireoUring", "VireoRBD", "VireoFabric", "VireoWire", "VireoSys", "CVireoSys", "CVireoVerbs"]
        ),
        .testTarget(name: "VireoBenchTests", dependencies: ["VireoBench", "VireoDaemon", "VhostUser", "VhostUserFrontend", "Virtio", "VirtioDriver", "VireoSys"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "VireoPacketTargetTests",
            dependencies: ["VireoInitiator", "VireoAuth", "VireoTestSupport", "VireoTarget", "VireoDaemon", "VireoPacketTarget", "VireoBlockTarget", "VireoFabric", "VireoWire", "VireoSys", "CVireoSys",
                           "CVireoVerbs"]
        ),
    ]
)

// Data-path modules, release builds: no dynamic exclusivity checks. The profile
// (docs/bench/analysis.md) put swift_beginAccess and its thread-local lookups
// at ~12% of the initiator's user time per I/O. Debug builds, every test run
// and the sanitizer builds keep the checks, so a conflicting access still
// fails a test.
let dataPathModules: Set<String> = [
    "VireoSys", "VireoFabric", "VireoWire", "VireoUring", "VireoTargetCore", "VireoBlockTarget",
    "VireoPacketTarget", "Virtio", "VirtioDriver", "VhostUser", "VireoInitiator", "VireoBench",
]
for target in package.targets where dataPathModules.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? [])
        + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
}
