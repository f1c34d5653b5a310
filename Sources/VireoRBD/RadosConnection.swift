import CVireoRBD
import Synchronization
import VireoSys

/// One connection to a Ceph cluster (a librados client: its own messenger and
/// threads, its own identity `client.<id>` to the cluster), shared by the images
/// opened on it. Closed when the last owner lets go; every image opened on it
/// keeps it alive (`RBDImage.connection`).
public final class RadosConnection: @unchecked Sendable {
    // SAFETY: the handle is immutable after init; librados is thread-safe.
    let handle: OpaquePointer
    /// How the cluster names this client instance (`client.<instanceID>`): what a
    /// blocklist entry or an exclusive-lock owner shows.
    public let instanceID: UInt64
    private let fenced = Atomic<Bool>(false)

    /// librados' error for every operation of a client the cluster blocklisted (EBLOCKLISTED).
    public static let blocklistedErrno: Int32 = ESHUTDOWN

    /// Whether an operation on it failed with `blocklistedErrno`: the cluster fenced this
    /// client (another gateway broke its exclusive lock, or an operator blocklisted it), and
    /// every later operation fails too. No image opens on it any more (`RadosConnectionPool`);
    /// its images are reopened on a new connection, a new client instance.
    public var isFenced: Bool { fenced.load(ordering: .acquiring) }

    /// Records that the cluster blocklisted this client (any thread; no allocation).
    public func markFenced() { fenced.store(true, ordering: .releasing) }

    /// How to reach and authenticate with a cluster.
    public struct Settings: Equatable, Sendable {
        /// ceph.conf (monitor addresses, auth); nil: librados' default search path.
        public var configFile: String?
        /// The cephx user without `client.` (`admin`, `vireo`).
        public var clientID: String
        /// The user's keyring; nil: the one the configuration names.
        public var keyring: String?
        /// librados options set after the file (`rados_osd_op_timeout`, ...), in order.
        public var options: [(String, String)]

        public init(configFile: String?, clientID: String, keyring: String?, options: [(String, String)] = []) {
            self.configFile = configFile
            self.clientID = clientID
            self.keyring = keyring
            self.options = options
        }

        public static func == (a: Settings, b: Settings) -> Bool {
            a.configFile == b.configFile && a.clientID == b.clientID && a.keyring == b.keyring
                && a.options.map { "\($0.0)=\($0.1)" } == b.options.map { "\($0.0)=\($0.1)" }
        }
    }

    /// Connects (reads the configuration, authenticates, fetches the maps): a blocking call
    /// of up to the monitor timeout, made on the control plane.
    public init(_ settings: Settings) throws(SystemError) {
        var out: OpaquePointer?
        var failed: UnsafePointer<CChar>?
        let keys = settings.options.map { strdup($0.0) }
        let values = settings.options.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let r = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                vireo_rados_connect(settings.configFile, "client.\(settings.clientID)", settings.keyring,
                                    k.baseAddress, v.baseAddress, Int32(settings.options.count), &out, &failed)
            }
        }
        guard r == 0, let out else {
            let call = failed.map { String(cString: $0) } ?? "rados_connect"
            throw SystemError(call: "\(call) [client.\(settings.clientID), \(settings.configFile ?? "default ceph.conf")]",
                              errno: -r)
        }
        handle = out
        instanceID = vireo_rados_instance_id(out)
    }

    /// Shuts the client down, unless it was fenced: its images are left open then (see
    /// `RBDImage`), and librados must not be shut down under them.
    deinit {
        if !isFenced { vireo_rados_shutdown(handle) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
