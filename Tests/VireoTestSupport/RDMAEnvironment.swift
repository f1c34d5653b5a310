import VireoFabric
#if canImport(Glibc)
import Glibc
#endif

/// Where the RDMA integration tests run: over a real device (rxe in the lab).
/// One copy for every test target with RDMA suites (`VireoTestSupport`).
public enum RDMAEnvironment {
    /// True inside the lab or when VIREO_REQUIRE_RDMA=1: missing RDMA is then a failure, not a skip.
    public static let required: Bool = env("VIREO_LAB") == "1" || env("VIREO_REQUIRE_RDMA") == "1"
    /// An RDMA device is present.
    public static let hasDevice: Bool = !VerbsContext.deviceNames().isEmpty
    /// Run the suite when a device exists, or when one is required (so its absence fails).
    public static let enabled: Bool = hasDevice || required
    /// The local address bound to the RDMA netdev (the lab's dummy0).
    public static let address: String = env("VIREO_RDMA_ADDR") ?? env("VIREO_LAB_ADDR") ?? "10.99.0.1"

    public static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
