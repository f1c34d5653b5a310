import VireoAuth
import Logging
import Synchronization
import VhostUser
import Virtio
import VireoFabric
import VireoSys
import VireoWire

/// A vhost-user virtio-net device whose port is on a Vireo target's network
/// (an L2 switch) over RDMA. Each RX/TX queue pair has its own connection
/// (queue index i) and worker; guest memory is registered with iova =
/// guest-physical address, so frames move between guest buffers and the
/// target by SEND/receive with no copy (see `NetQueuePair`).
///
/// At init it connects every pair (pair 0's accept gives the MTU the config
/// space reports). A lost connection is remade in the background
/// (`FabricSupervisor`); the link is reported down meanwhile.
public final class RemoteNetDevice: VhostUserDevice, @unchecked Sendable {
    // SAFETY (Sendable): `memory` and `negotiated` are written by the
    // vhost-user control thread only while every worker is parked and read by
    // workers otherwise; `pairs` and `supervisor` are set in init; the rest
    // is immutable, atomic or in a `Locked`.

    public let config: NicConfig
    public let counters = RemoteNetCounters()
    let logger: Logger
    /// Registered guest memory (iova = gpa).
    let memory: GuestMemoryRegistry
    /// Registered guest regions, read by the workers.
    var regions: GuestRegionTable { memory.table }
    private let geometryState: Locked<PacketGeometry>
    private let configChanged = Locked<(@Sendable () -> Void)?>(nil)
    /// Link status as reported to the guest.
    private let linkReported = Atomic<Bool>(true)
    private let connectedPairs: Atomic<Int>
    /// MTU set by NET_SET_MTU (0: the network's).
    private let mtuOverride = Atomic<UInt32>(0)
    /// Features the driver accepted.
    private(set) var negotiated: UInt64 = 0
    private(set) var pairs: [NetQueuePair] = []
    /// Stops the fabric supervisor (whatever connector it runs).
    private var stopSupervisor: (@Sendable () -> Void)?

    /// Connects every queue pair to the target network. Errors: the target's
    /// reject (message verbatim), connect failures, an unusable geometry, a failed handshake.
    /// `credentials`: who this host is to the target (default: the machine's host name, no secret).
    public convenience init(config: NicConfig, credentials: CredentialSource? = nil,
                            logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        let c = credentials ?? .fixed(.thisMachine)
        try self.init(config: config, connector: PacketConnector(config: config, credentials: c), logger: logger)
    }

    /// The same over any connector: the fabric's (`PacketConnector`), or a test's over the fake verbs layer.
    init<Connector: EndpointConnector>(config: NicConfig, connector: Connector, logger: Logger) throws(InitiatorError)
        where Connector.Grant == PacketGeometry {
        self.config = config
        self.logger = logger
        let fabric = try FabricQueues(connector: connector, queues: config.queuePairs,
                                      initialCredits: NetCredits.announcement(assembled: 0))
        geometryState = Locked(fabric.firstGrant)
        connectedPairs = Atomic(config.queuePairs)
        memory = GuestMemoryRegistry(pd: fabric.registrar, logger: logger, what: "nic \(config.socket)",
                                     access: [.localWrite])
        for (q, (conn, g)) in fabric.initial.enumerated() {
            pairs.append(NetQueuePair(index: q, nic: self, connection: conn, geometry: g, link: fabric.links[q], logger: logger))
        }
        stopSupervisor = try fabric.startSupervisor(cqs: pairs.map(\.cq), name: "vireo-nfab", logger: logger,
                                                    onGeometry: { [weak self] g, q in self?.geometryArrived(g, pair: q) })
        let g = fabric.firstGrant
        logger.info("nic \(config.socket): target \(config.target) network \(config.network): mac \(config.mac), MTU \(g.mtu), max frame \(g.maxFrameBytes), \(g.receiveBuffers) target buffers, \(config.queuePairs) queue pair(s)")
    }

    /// Stops the fabric side. Call after the vhost-user server has stopped.
    public func stop() {
        stopSupervisor?()
        stopSupervisor = nil
        for p in pairs { p.close() }
    }

    /// Deleted with force while a VMM is attached (control thread): no reconnect from now
    /// on; each pair's worker drops its connection, so the guest sees the link go down and
    /// what it sends is dropped.
    public func detach() {
        stopSupervisor?()
        stopSupervisor = nil
        for p in pairs {
            p.link.detached.store(true, ordering: .releasing)
            p.link.workerWake.signal()
        }
    }

    /// Called (on a worker or control thread) when the link status or MTU
    /// changes; e.g. `{ try? server.notifyConfigChange() }`.
    public func onConfigChange(_ handler: @escaping @Sendable () -> Void) {
        configChanged.withLock { $0 = handler }
    }

    /// The network's geometry (pair 0's, kept current).
    public var geometry: PacketGeometry { geometryState.withLock { $0 } }
    /// Whether the guest is told the link is up.
    public var isLinkUp: Bool { linkReported.load(ordering: .acquiring) }
    /// Whether the driver accepted MRG_RXBUF (several buffers per frame).
    var mergeableRxBuffers: Bool { negotiated & VirtioNet.Feature.mergeableRxBuffers != 0 }
    /// The MTU the config space reports.
    public var mtu: UInt32 {
        let o = mtuOverride.load(ordering: .relaxed)
        return o != 0 ? o : geometry.mtu
    }

    /// RX chains the device holds (tests; racy snapshot).
    public var heldReceiveBuffers: Int { pairs.reduce(0) { $0 + $1.heldReceiveBuffers } }

    func setMTUOverride(_ v: UInt32) { mtuOverride.store(v, ordering: .relaxed) }

    private func geometryArrived(_ g: PacketGeometry, pair: Int) {
        let old = geometryState.withLock { s -> UInt32 in
            let old = s.mtu
            s = g
            return old
        }
        guard old != g.mtu else { return }
        logger.notice("nic \(config.socket): network \(config.network) MTU changed from \(old) to \(g.mtu) (pair \(pair) reconnect); sending CONFIG_CHANGE")
        configChanged.withLock { $0 }?()
    }

    /// A pair adopted a connection: the link comes up once every pair is connected.
    func pairConnected(_ pair: Int) {
        let n = connectedPairs.add(1, ordering: .acquiringAndReleasing).newValue
        guard n == config.queuePairs, !linkReported.exchange(true, ordering: .acquiringAndReleasing) else { return }
        logger.notice("nic \(config.socket): link up")
        configChanged.withLock { $0 }?()
    }

    /// A pair lost its connection; unless `quiet` (a quiesce), the link goes down.
    func pairDisconnected(_ pair: Int, quiet: Bool) {
        connectedPairs.subtract(1, ordering: .acquiringAndReleasing)
        guard !quiet, linkReported.exchange(false, ordering: .acquiringAndReleasing) else { return }
        logger.warning("nic \(config.socket): link down (pair \(pair) lost its connection)")
        configChanged.withLock { $0 }?()
    }

    // MARK: VhostUserDevice: queues

    public var deviceType: VirtioDeviceType { .net }
    /// RX/TX pairs (RX = 2k, TX = 2k+1), then the control queue.
    public var queueCount: Int { 2 * config.queuePairs + 1 }
    public var maxQueueSize: UInt16 { UInt16(config.queueSize) }
    public var workerCount: Int { config.queuePairs }
    /// A pair's two queues share its worker; the control queue runs on worker 0.
    public func worker(forQueue q: Int) -> Int { q / 2 }
    var controlQueue: Int { 2 * config.queuePairs }

    public func handle(_ request: VhostUserQueueRequest) {
        let q = request.queueIndex
        if q == controlQueue { control(request) } else { pairs[q / 2].handle(request) }
    }

    public func admissionBudget(queue: Int) -> Int {
        queue < controlQueue ? pairs[queue / 2].admissionBudget(queue: queue) : .max
    }

    public func poll(worker: Int) -> Int {
        worker < pairs.count ? pairs[worker].poll() : 0
    }

    public func wakeDescriptors(worker: Int) -> [Int32] {
        worker < pairs.count ? pairs[worker].wakeDescriptors : []
    }

    public func prepareToSleep(worker: Int) -> Bool {
        worker < pairs.count ? pairs[worker].prepareToSleep() : false
    }

    /// RX chains are held for as long as no frame arrives: the worker sleeps
    /// on the CQ channel and the supervisor's eventfd, no timed polling.
    public func needsTimedPolling(worker: Int) -> Bool { false }

    public func willPark(worker: Int) {
        if worker < pairs.count { pairs[worker].willPark() }
    }

    // MARK: VhostUserDevice: memory and connection

    public func memoryRegionsAdded(_ added: [GuestMemory.Region]) { memory.add(added) }

    public func memoryRegionsRemoved(_ removed: [GuestMemory.Region]) { memory.remove(removed) }

    public func featuresNegotiated(_ features: UInt64) { negotiated = features }

    public func connectionClosed() { negotiated = 0 }

    /// `<socket>.inflight` (`RestartRecord`): QEMU's vhost-user-net keeps no
    /// inflight region and restarts a ring at its used index after the
    /// back-end dies, while a NIC completes receive buffers out of the order
    /// it took them; the record lets a restarted initiator resume exactly.
    public var restartRecordPath: String? { config.socket + ".inflight" }
}
