import VireoRBD
import VireoSys

/// The Ceph clusters a target knows and its connections to them: what an RBD export
/// opens its image through (`BlockStore`). One per daemon; its connections are shared
/// by every export on the same cluster with the same timeout.
public final class CephClusters: Sendable {
    public let clusters: [CephClusterConfig]
    let connections = RadosConnectionPool()

    public init(_ clusters: [CephClusterConfig] = []) { self.clusters = clusters }

    /// The cluster an export names, or the only one when it names none.
    public func cluster(named name: String?) -> CephClusterConfig? {
        if let name { return clusters.first { $0.name == name } }
        return clusters.count == 1 ? clusters[0] : nil
    }

    /// Opens `spec` on `cluster` (blocking: the control plane).
    func open(_ spec: RBDImageSpec, cluster: CephClusterConfig, timeout: Double, readOnly: Bool) throws(SystemError) -> RBDImage {
        try connections.open(settings: cluster.settings(timeout: timeout), imagesPerConnection: cluster.imagesPerConnection,
                             spec: spec, readOnly: readOnly)
    }
}
