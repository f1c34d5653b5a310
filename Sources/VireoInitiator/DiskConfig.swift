import VireoFabric

/// One remote disk to serve: where the VMM connects, which target export
/// backs it, and how the virtqueues map onto fabric connections.
public struct DiskConfig: Equatable, Sendable {
    /// vhost-user socket path the VMM connects to.
    public var socket: String
    /// The target's address ("10.99.0.1:4420"): the first path.
    public var target: FabricAddress
    /// Further paths to the same export through other gateways of its group, in order of
    /// preference (`target = "a:4420,b:4420"`): I/O goes over one path at a time, and moves
    /// to the next when the active one is lost (docs/ceph.md, "Gateway groups").
    public var standbyTargets: [FabricAddress] = []
    /// Every path, the first target first.
    public var paths: [FabricAddress] { [target] + standbyTargets }
    /// The paths as the `target` key writes them: "a:4420,b:4420".
    public var targetText: String { paths.map(\.description).joined(separator: ",") }
    /// Most paths a disk takes.
    public static let maxPaths = 8
    /// Export name on the target (1–23 of A-Z a-z 0-9 . _ : -).
    public var export: String
    /// Virtqueues, each with its own connection (queue index i).
    public var queues: Int
    /// Virtqueue size offered and commands in flight asked per connection.
    public var queueDepth: Int
    /// Serve the disk read-only (connects without write access).
    public var readOnly: Bool
    /// How long a lost target may stay away before held requests fail with IOERR.
    public var lossTimeoutNanoseconds: UInt64
    /// What the target must prove (`target_key_file`, `target_name`).
    public var targetTrust = TargetTrust()
    /// How the target reaches guest memory (`remote_access`).
    public var remoteAccess = RemoteAccess.windows

    /// How the target reaches a disk's guest memory.
    public enum RemoteAccess: String, Equatable, Sendable {
        /// Per command: a memory window over exactly each of its buffers, with exactly the
        /// access it needs, invalid before the command completes (`remote_access = "windows"`).
        case windows
        /// The whole guest RAM, read and write, for the connection's life (`"whole-memory"`):
        /// for RNICs without type-2 windows, and for comparison. Insecure: any key the
        /// target saw reaches all of the VM's memory.
        case wholeMemory = "whole-memory"
    }

    public static let defaultQueueDepth = 128
    public static let defaultLossTimeoutNanoseconds: UInt64 = 120_000_000_000

    public init(socket: String, target: FabricAddress, export: String, queues: Int = 1,
                queueDepth: Int = DiskConfig.defaultQueueDepth, readOnly: Bool = false,
                lossTimeoutNanoseconds: UInt64 = DiskConfig.defaultLossTimeoutNanoseconds) {
        self.socket = socket
        self.target = target
        self.export = export
        self.queues = queues
        self.queueDepth = queueDepth
        self.readOnly = readOnly
        self.lossTimeoutNanoseconds = lossTimeoutNanoseconds
    }
}
