import VireoDaemon
import VireoRBD

/// A Ceph cluster the target's RBD exports live in (`[[ceph_cluster]]`): how to reach it and
/// who to be there. Exports name it (`ceph_cluster`; the only one when they do not).
public struct CephClusterConfig: Equatable, Sendable {
    /// The name exports use (1-63 of A-Z a-z 0-9 . _ -).
    public var name: String
    /// ceph.conf with the monitors' addresses (nil: librados' default search, /etc/ceph/ceph.conf).
    public var configFile: String?
    /// The cephx user, without `client.` (default `admin`; deploy with a user of its own, docs/ceph.md).
    public var clientID = "admin"
    /// That user's keyring (nil: the one ceph.conf names, or none with auth none).
    public var keyring: String?
    /// Images one cluster connection serves before the next export opens another. Each
    /// connection costs a messenger and librados' threads; images on one share them.
    public var imagesPerConnection = 8

    public init(name: String = "ceph", configFile: String? = nil) {
        self.name = name
        self.configFile = configFile
    }

    /// The keys of a `[[ceph_cluster]]` table: `name`, `conf`, `client`, `keyring`,
    /// `images_per_connection`. Nil when the name is missing.
    public init?(reading r: some ConfigReader) {
        guard let name = r.requiredString("name", example: "ceph") else { return nil }
        self.init(name: name, configFile: r.string("conf", what: "a path to ceph.conf"))
        if let s = r.string("client", what: "a cephx user without client.") { clientID = s }
        keyring = r.string("keyring", what: "a path")
        if let n = r.int("images_per_connection") { imagesPerConnection = n }
    }

    /// Every problem, one line each.
    public func problems() -> [String] {
        var out: [String] = []
        let who = "ceph_cluster '\(name)'"
        if name.isEmpty || name.utf8.count > 63
            || !name.utf8.allSatisfy({ Self.nameCharacters.contains($0) }) {
            out.append("\(who): name must be 1-63 characters of A-Z a-z 0-9 . _ -")
        }
        if clientID.isEmpty || clientID.hasPrefix("client.") || clientID.contains(where: { $0 == " " || $0 == "/" }) {
            out.append("\(who): client '\(clientID)' must be a cephx user name without 'client.' (e.g. vireo)")
        }
        if imagesPerConnection < 1 || imagesPerConnection > 1024 {
            out.append("\(who): images_per_connection \(imagesPerConnection) must be 1-1024")
        }
        return out
    }

    private static let nameCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-".utf8)

    /// The librados settings for an export with I/O timeout `timeout` (seconds): operations
    /// the cluster does not answer within it fail (ETIMEDOUT), so a guest gets an error
    /// then instead of waiting for ever; exports with another timeout get another connection.
    public func settings(timeout: Double) -> RadosConnection.Settings {
        let t = String(Int(timeout.rounded(.up)))
        return RadosConnection.Settings(
            configFile: configFile, clientID: clientID, keyring: keyring,
            options: [("rados_osd_op_timeout", t), ("rados_mon_op_timeout", t), ("client_mount_timeout", t),
                      // librbd writes straight from the target's buffers (they stay until the completion).
                      ("rbd_disable_zero_copy_writes", "false"),
                      // No gateway-side cache: a write is acknowledged once the OSDs have it. A
                      // cache would acknowledge earlier, and what it held is lost when the gateway
                      // dies; the guest's next FLUSH, served by the restarted gateway or another
                      // of the group, would then complete without covering it.
                      ("rbd_cache", "false")])
    }
}
