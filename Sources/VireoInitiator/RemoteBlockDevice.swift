import VireoAuth
import Logging
import VhostUser
import Virtio
import VireoFabric
import VireoSys
import VireoWire

/// A vhost-user virtio-blk device whose requests are served by a Vireo
/// target over RDMA. Each virtqueue has its own connection (queue index i)
/// and worker; guest memory is registered with iova = guest-physical address,
/// so commands name the guest's own buffers and the target moves the data
/// with RDMA READ/WRITE. The initiator's CPU copies no payload byte.
///
/// At init it connects every queue (queue 0 first: its accept carries the
/// geometry the config space reports). A lost connection holds requests and
/// reconnects in the background (see `FabricSupervisor`, `RemoteQueue`).
public final class RemoteBlockDevice: VhostUserDevice, @unchecked Sendable {
    // SAFETY (Sendable): `memory` is written by the vhost-user control thread
    // only while every worker is parked (memory callbacks run quiesced) and
    // read by workers otherwise; `queues` and
    // `supervisor` are set in init; the rest is immutable, atomic or in a `Locked`.

    public let config: DiskConfig
    public let counters = RemoteDiskCounters()
    let logger: Logger
    /// Registered guest memory (iova = gpa).
    let memory: GuestMemoryRegistry
    /// Registered guest regions, read by the workers.
    var regions: GuestRegionTable { memory.table }
    private let geometryState: Locked<BlockGeometry>
    private let configChanged = Locked<(@Sendable () -> Void)?>(nil)
    let pd: any MemoryRegistrar
    private(set) var queues: [RemoteQueue] = []
    /// Stops the fabric supervisor (whatever connector it runs).
    private var stopSupervisor: (@Sendable () -> Void)?
    /// The disk's paths and which carries I/O (nil: a test connector without paths).
    let paths: DiskPaths?
    /// The target I/O goes to now (the active path's), for messages.
    var activeTarget: String { paths.map { "\($0.addresses[$0.active])" } ?? "\(config.target)" }

    /// Connects every queue to the target and prepares the per-queue buffers.
    /// Errors: the target's reject (message verbatim), connect failures, an
    /// unusable geometry, a failed handshake, buffer registration. `credentials`: who this
    /// host is to the target (default: the machine's host name, no secret).
    public convenience init(config: DiskConfig, credentials: CredentialSource? = nil,
                            logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        let c = credentials ?? .fixed(.thisMachine)
        try self.init(config: config, connector: TargetConnector(config: config, credentials: c), logger: logger)
    }

    /// The same over any connector: the fabric's (`TargetConnector`), or a test's over the fake verbs layer.
    init<Connector: EndpointConnector>(config: DiskConfig, connector: Connector, logger: Logger) throws(InitiatorError)
        where Connector.Grant == BlockGeometry {
        self.config = config
        self.logger = logger
        paths = (connector as? TargetConnector)?.paths
        let fabric = try FabricQueues(connector: connector, queues: config.queues, initialCredits: 0)
        geometryState = Locked(fabric.firstGrant)
        pd = fabric.registrar
        memory = GuestMemoryRegistry(pd: pd, logger: logger, what: "disk \(config.socket)",
                                     access: config.remoteAccess == .windows ? [.localWrite, .windowBind]
                                         : [.localWrite, .remoteRead, .remoteWrite])
        switch config.remoteAccess {
        case .windows:
            // Refuse to start without windows rather than fall back silently to whole-memory access.
            do throws(FabricError) { _ = try pd.allocateWindow() } catch {
                for (conn, _) in fabric.initial { conn.disconnect(timeoutMilliseconds: 100) }
                throw .fabric("disk \(config.socket): the RNIC cannot allocate type-2 memory windows (remote_access = \"windows\"); set remote_access = \"whole-memory\" to run without per-command scoping (insecure)", error)
            }
        case .wholeMemory:
            logger.warning("disk \(config.socket): remote_access = whole-memory: INSECURE, the target (and any key it saw) can read and write all of this VM's RAM while connected")
        }
        for (q, (conn, g)) in fabric.initial.enumerated() {
            queues.append(try RemoteQueue(index: q, disk: self, connection: conn, geometry: g, link: fabric.links[q],
                                          logger: logger))
        }
        // A new geometry is acted on when the queue adopts the connection
        // (`geometryAdopted`), not in `onGeometry`: CONFIG_CHANGE must not reach the
        // guest while the queue still checks requests against the old capacity.
        let stopFabric = try fabric.startSupervisor(cqs: queues.map(\.cq), name: "vireo-fab", logger: logger,
                                                    onGeometry: { _, _ in })
        stopSupervisor = stopFabric
        if let target = connector as? TargetConnector, target.pathCount > 1 {
            do throws(SystemError) {
                let prober = try PathProber(connector: target, what: "disk \(config.socket)", logger: logger)
                try prober.start(name: "vireo-probe")
                stopSupervisor = { prober.stop(); stopFabric() }
            } catch {
                stopFabric()
                for q in queues { q.close() }
                throw .system("pthread_create (path prober)", error)
            }
        }
        let g = fabric.firstGrant
        logger.info("disk \(config.socket): target \(config.target) export \(config.export): \(g.capacityBytes) bytes, block \(g.blockSize), \(config.queues) queue(s), depth \(g.queueDepth), \(g.maxSegments) segments, max I/O \(g.maxIOBytes), inline \(g.maxInlineBytes), remote access \(config.remoteAccess.rawValue)\(g.flags.contains(.readOnly) || config.readOnly ? ", read-only" : "")")
    }

    /// Stops the fabric side. Call after the vhost-user server has stopped.
    public func stop() {
        stopSupervisor?()
        stopSupervisor = nil
        for q in queues { q.close() }
    }

    /// Deleted with force while a VMM is attached (control thread): no reconnect from now
    /// on; each queue's worker cuts its connection (so the RNIC touches no guest buffer of
    /// it any more), then completes every held and in-flight request with IOERR, and every
    /// later one at once. The guest sees its disk fail, never hang.
    public func detach() {
        stopSupervisor?()
        stopSupervisor = nil
        for q in queues {
            q.link.detached.store(true, ordering: .releasing)
            q.link.workerWake.signal()
        }
    }

    /// Called (on a control thread) when the capacity changes after a reconnect;
    /// e.g. `{ try? server.notifyConfigChange() }` (CONFIG_CHANGE over the back-end channel).
    public func onConfigChange(_ handler: @escaping @Sendable () -> Void) {
        configChanged.withLock { $0 = handler }
    }

    /// The geometry the config space reports (queue 0's, capacity kept current).
    public var geometry: BlockGeometry { geometryState.withLock { $0 } }

    /// Requests held or waiting for a credit, summed over queues (tests; racy snapshot).
    public var queuedRequests: Int { queues.reduce(0) { $0 + $1.queuedCount } }

    /// Called by queue `queue`'s worker once it adopted a connection with
    /// geometry `g` (its request checks already use `g`).
    func geometryAdopted(_ g: BlockGeometry, queue: Int) {
        let old = geometryState.withLock { s -> UInt64 in
            let old = s.capacityBytes
            s.capacityBytes = g.capacityBytes
            return old
        }
        guard old != g.capacityBytes else { return }
        logger.notice("disk \(config.socket): export \(config.export) capacity changed from \(old) to \(g.capacityBytes) bytes (queue \(queue) reconnect); sending CONFIG_CHANGE")
        configChanged.withLock { $0 }?()
    }

    static func blkLimits(_ g: BlockGeometry, readOnly: Bool) -> BlkDeviceLimits {
        BlkDeviceLimits(capacitySectors: g.capacityBytes / VirtioBlk.sectorSize,
                        readOnly: readOnly || g.flags.contains(.readOnly), flush: g.flags.contains(.flush),
                        discard: g.flags.contains(.discard) && g.maxDiscardBytes >= 512, maxDiscardSegments: 1,
                        writeZeroes: g.flags.contains(.writeZeroes) && g.maxWriteZeroesBytes >= 512,
                        maxWriteZeroesSegments: 1,
                        // SEG_MAX is advertised as half the granted segments (region splits).
                        maxDataSegments: UInt32(g.maxSegments))
    }

    // MARK: VhostUserDevice: requests

    public var deviceType: VirtioDeviceType { .block }
    public var queueCount: Int { config.queues }
    public var maxQueueSize: UInt16 { UInt16(config.queueDepth) }
    public var workerCount: Int { config.queues }
    public func worker(forQueue q: Int) -> Int { q }

    public func handle(_ request: VhostUserQueueRequest) {
        queues[request.queueIndex].submit(request)
    }

    public func poll(worker: Int) -> Int {
        worker < queues.count ? queues[worker].poll() : 0
    }

    public func wakeDescriptors(worker: Int) -> [Int32] {
        worker < queues.count ? queues[worker].wakeDescriptors : []
    }

    /// Connected, the completion channel and the supervisor's wake event wake
    /// the worker; only held requests (fabric lost) need the 1 ms tick, for
    /// their loss timeout.
    public func needsTimedPolling(worker: Int) -> Bool {
        worker < queues.count ? !queues[worker].isConnected : false
    }

    public func prepareToSleep(worker: Int) -> Bool {
        guard worker < queues.count else { return false }
        return queues[worker].prepareToSleep()
    }

    // MARK: VhostUserDevice: memory and connection

    public func memoryRegionsAdded(_ added: [GuestMemory.Region]) { memory.add(added) }

    public func memoryRegionsRemoved(_ removed: [GuestMemory.Region]) { memory.remove(removed) }

    public func abortOutstanding(worker: Int) {
        if worker < queues.count { queues[worker].abortOutstanding() }
    }

    public func connectionClosed() {
        for q in queues { q.abandonAll() }
    }
}
