import Logging
import VireoFabric
import VireoSys
import VireoWire

/// An export being served: its configuration, its open store, its identifier
/// and the connections it holds (counted by the control plane only).
public final class Export: @unchecked Sendable {
    // SAFETY: `queues`/`queuesByHost` are touched only by the control-plane thread;
    // everything else is immutable after init.
    public let config: ExportConfig
    public let store: BlockStore
    /// The 20-byte identifier GET_ID returns: the export's group (the same through every
    /// gateway), else its name; NUL padded.
    public let identifier: [UInt8]
    /// A memory export's bytes registered (local access only: no peer gets a key to
    /// them) with each protection domain serving it, so RDMA moves READ and WRITE
    /// data straight between the export and the initiator's buffers. Registered at
    /// the first connection through that PD (control plane), kept while the export lives.
    private let registrations = Locked<[ObjectIdentifier: MemoryRegion]>([:])
    /// Connections open now.
    package var queues = 0
    package var queuesByHost: [[UInt8]: Int] = [:]

    /// Opens the export's store (creating a sparse file when needed).
    /// Commands, bytes, errors and latency over every connection (`ExportCounters`).
    public let counters: ExportCounters

    /// Opens the export's storage. `counters`: a resized export's predecessor's, kept.
    /// `ceph`: the clusters an RBD export's image is opened through.
    public init(config: ExportConfig, counters: ExportCounters = ExportCounters(), ceph: CephClusters = CephClusters(),
                logger: Logger) throws(SystemError) {
        self.config = config
        self.counters = counters
        store = try BlockStore(config: config, ceph: ceph, logger: logger)
        identifier = Self.identifier(for: config)
    }

    /// What GET_ID answers for `config`: its group, else its name, NUL padded to 20 bytes.
    static func identifier(for config: ExportConfig) -> [UInt8] {
        let id = Array((config.group ?? config.name).utf8.prefix(20))
        return id + [UInt8](repeating: 0, count: 20 - id.count)
    }

    /// A memory export's registration with `registrar` (made on first use), or nil for
    /// file and device exports. Throws when the RNIC refuses the registration (the
    /// caller falls back to bounce buffers).
    package func memoryRegion(for registrar: any MemoryRegistrar) throws(FabricError) -> MemoryRegion? {
        guard let base = store.memory else { return nil }
        let key = ObjectIdentifier(registrar)
        let store = self.store
        return try registrations.withLock { r throws(FabricError) -> MemoryRegion in
            if let mr = r[key] { return mr }
            // SAFETY: the mapping is `capacity` bytes and lives as long as `store`, which the
            // region keeps alive (owner); local write only: the RNIC writes into it for
            // RDMA READs this target posts, and no remote key is ever handed out.
            let mr = try registrar.register(address: base, length: Int(store.capacity), access: [.localWrite], iova: nil,
                                            owner: store)
            r[key] = mr
            return mr
        }
    }

    /// Largest DISCARD / WRITE_ZEROES a command may ask for (1 GiB, block aligned).
    static let maxRangeCommand: UInt32 = 1 << 30

    /// A grant, or the reject to send.
    package enum Grant {
        case granted(BlockGeometry)
        case refused(ConnectReject)
    }

    /// The geometry granted for `request` (depth, segments and max I/O are the
    /// smaller of asked and configured), or why none can be.
    package func grant(_ r: ConnectRequest) -> Grant {
        let c = config
        guard r.queueDepth > 0, r.maxSegments > 0 else {
            return .refused(ConnectReject(.malformed, "queue depth and segments must be at least 1"))
        }
        let depth = min(Int(r.queueDepth), c.queueDepth)
        let segments = min(Int(r.maxSegments), c.maxSegments)
        let maxIO = min(Int(r.maxIOBytes), c.maxIO) / Int(c.blockSize) * Int(c.blockSize)
        guard maxIO >= Int(c.blockSize) else {
            return .refused(ConnectReject(.malformed, "max I/O \(r.maxIOBytes) is below the block size \(c.blockSize)"))
        }
        var flags: BlockGeometry.Flags = [.flush]
        if c.readOnly { flags.insert(.readOnly) }
        if store.supportsDiscard && !c.readOnly { flags.insert(.discard) }
        if store.supportsWriteZeroes && !c.readOnly { flags.insert(.writeZeroes) }
        return .granted(BlockGeometry(
            capacityBytes: store.capacity, blockSize: c.blockSize, flags: flags,
            maxDiscardBytes: flags.contains(.discard) ? Self.maxRangeCommand : 0,
            maxWriteZeroesBytes: flags.contains(.writeZeroes) ? Self.maxRangeCommand : 0,
            queueDepth: UInt16(depth), maxSegments: UInt16(segments), maxIOBytes: UInt32(maxIO),
            maxInlineBytes: UInt32(min(c.inlineMax, maxIO)), optimalIOBytes: UInt32(maxIO)))
    }
}
