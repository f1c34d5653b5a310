import VireoSys

/// The cluster connections a process holds, shared by its images: an image opens on a
/// live connection with the same settings holding fewer than `imagesPerConnection`
/// images, or on a new one. Each connection costs a messenger and librados' threads;
/// each image on it shares them (and its completions' latency under load).
/// Connections close when their last image does (the images own them). A fenced connection
/// (blocklisted by the cluster) takes no new image.
public final class RadosConnectionPool: Sendable {
    private struct Entry {
        let settings: RadosConnection.Settings
        weak var connection: RadosConnection?
        var images: [WeakImage]
    }
    private struct WeakImage { weak var image: RBDImage? }
    private let entries = Locked<[Entry]>([])

    public init() {}

    /// Opens an image on a shared connection (connecting first when none has room): blocking,
    /// made on the control plane.
    public func open(settings: RadosConnection.Settings, imagesPerConnection: Int, spec: RBDImageSpec,
                     readOnly: Bool) throws(SystemError) -> RBDImage {
        // Connecting and opening block on the cluster: not under the lock. Two opens racing
        // may each make a connection; both are used.
        var reuse: RadosConnection?
        entries.withLock { e in
            e.removeAll { $0.connection == nil || $0.connection?.isFenced == true }
            for i in e.indices where e[i].settings == settings {
                e[i].images.removeAll { $0.image == nil }
                if e[i].images.count < max(1, imagesPerConnection), let c = e[i].connection {
                    reuse = c
                    break
                }
            }
        }
        let connection: RadosConnection
        if let reuse { connection = reuse } else { connection = try RadosConnection(settings) }
        let opened = try RBDImage(connection: connection, spec: spec, readOnly: readOnly)
        entries.withLock { e in
            if let i = e.firstIndex(where: { $0.connection === connection }) {
                e[i].images.append(WeakImage(image: opened))
            } else {
                e.append(Entry(settings: settings, connection: connection, images: [WeakImage(image: opened)]))
            }
        }
        return opened
    }
}
