import VireoDaemon
import VireoRBD
import VireoWire

/// One export as configured: what backs it and the limits its connections get.
public struct ExportConfig: Equatable, Sendable {
    /// Where an export's bytes live.
    public enum Backing: Equatable, Sendable {
        /// A regular file, created sparse at `size` when absent.
        case file(String)
        /// A block device; its size comes from BLKGETSIZE64.
        case device(String)
        /// Anonymous memory of `size` bytes (gone when the target stops).
        case memory
        /// An RBD image in a Ceph cluster (`ceph_cluster`); its size comes from the image.
        case rbd(RBDImageSpec)
    }

    /// Endpoint name initiators connect to (1–23 of A-Z a-z 0-9 . _ : -).
    public var name: String
    public var backing: Backing
    /// Capacity in bytes; required for memory, and for a file that does not exist yet.
    public var size: UInt64?
    /// Logical block size: 512 or 4096.
    public var blockSize: UInt32 = 512
    public var readOnly = false
    /// Connections (queues) this export serves at once, over all hosts.
    public var maxQueues = 16
    /// Connections one initiator host may hold on this export (nil: `maxQueues`).
    public var maxQueuesPerHost: Int?
    /// Largest queue depth granted.
    public var queueDepth = 128
    /// Largest data bytes per command granted.
    public var maxIO = 1 << 20
    /// Largest segment count per command granted.
    public var maxSegments = 128
    /// Largest inline WRITE granted (0: none).
    public var inlineMax = 4096
    /// Which hosts may open this export (`allowed_hosts`, `allow_any_host`).
    public var access = EndpointAccessConfig()
    /// RBD: the gateway group this export belongs to: other targets export the same image
    /// under the same name and group, and initiators fail over between them. The group name is
    /// the disk's identifier (GET_ID: the guest's serial), the same through every gateway.
    public var group: String?
    /// RBD: the `[[ceph_cluster]]` the image is in (nil: the only one configured).
    public var cephCluster: String?
    /// RBD: seconds an operation may wait for the cluster before the guest gets an I/O error
    /// (an OSD down, the client blocklisted, the cluster unreachable).
    public var ioTimeoutSeconds: Double = 30

    public init(name: String, backing: Backing, size: UInt64? = nil) {
        self.name = name
        self.backing = backing
        self.size = size
    }

    /// Every problem with this export, one line each (empty: valid).
    public func problems() -> [String] {
        var out: [String] = []
        let who = "export '\(name)'"
        if !ConnectRequest.isValidName(name) {
            out.append("\(who): name must be 1-\(Wire.maxNameLength) characters of A-Z a-z 0-9 . _ : -")
        }
        if blockSize != 512 && blockSize != 4096 { out.append("\(who): block_size \(blockSize) must be 512 or 4096") }
        switch backing {
        case .memory:
            if size == nil { out.append("\(who): a memory export needs a size") }
        case .file(let path), .device(let path):
            if path.isEmpty { out.append("\(who): empty path") }
        case .rbd(let spec):
            if size != nil { out.append("\(who): an rbd export takes its size from the image; drop size") }
            if spec.snapshot != nil && !readOnly { out.append("\(who): a snapshot (\(spec)) is served read-only; drop read_only = false") }
            if !(ioTimeoutSeconds >= 1 && ioTimeoutSeconds <= 3600) {
                out.append("\(who): io_timeout \(ioTimeoutSeconds) must be 1-3600 seconds")
            }
        }
        if case .rbd = backing {} else if cephCluster != nil {
            out.append("\(who): ceph_cluster applies to rbd exports only")
        }
        if let group {
            if case .rbd = backing {} else { out.append("\(who): group applies to rbd exports only (gateways share an image)") }
            if !ConnectRequest.isValidName(group) || group.utf8.count > 20 {
                out.append("\(who): group '\(group)' must be 1-20 characters of A-Z a-z 0-9 . _ : -")
            }
            if case .rbd(let spec) = backing, spec.snapshot != nil {
                out.append("\(who): a group serves an image, not a snapshot")
            }
        }
        if case .device = backing, size != nil { out.append("\(who): a device export takes its size from the device; drop size") }
        if let size {
            if size == 0 { out.append("\(who): size must be above zero") }
            else if size % UInt64(blockSize) != 0 { out.append("\(who): size \(size) is not a multiple of block_size \(blockSize)") }
        }
        if maxQueues < 1 || maxQueues > 65535 { out.append("\(who): max_queues \(maxQueues) must be 1-65535") }
        if let perHost = maxQueuesPerHost, perHost < 1 { out.append("\(who): max_queues_per_host must be at least 1") }
        if queueDepth < 1 || queueDepth > Wire.maxQueueDepthLimit {
            out.append("\(who): queue_depth \(queueDepth) must be 1-\(Wire.maxQueueDepthLimit)")
        }
        if maxIO < Int(blockSize) || maxIO > Wire.maxIOLimit || maxIO % 512 != 0 {
            out.append("\(who): max_io \(maxIO) must be a multiple of 512 between block_size and \(Wire.maxIOLimit)")
        }
        if maxSegments < 1 || maxSegments > Wire.maxSegmentsLimit {
            out.append("\(who): max_segments \(maxSegments) must be 1-\(Wire.maxSegmentsLimit)")
        }
        if inlineMax < 0 || inlineMax > Wire.maxInlineLimit {
            out.append("\(who): inline_max \(inlineMax) must be 0-\(Wire.maxInlineLimit)")
        }
        return out
    }
}
