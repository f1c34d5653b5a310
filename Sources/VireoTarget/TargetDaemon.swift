import VireoAuth
import VireoBlockTarget
import Logging
import Synchronization
import VireoFabric
import VireoPacketTarget
import VireoSys
import VireoTargetCore
import VireoWire
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

/// `vireo-target serve`: listens on the fabric, admits block connections to
/// the configured exports and packet connections to the configured networks,
/// and hands each to a worker thread (block: the least-loaded worker; packet:
/// the network's own worker, see `PacketNetwork`).
///
/// The control plane (one thread) accepts and rejects connections, watches
/// each connection's rdma_cm events (a peer's disconnect is passed to its
/// worker, which drops the queue once its storage I/O is done), and releases
/// connections the workers retire. Data moves only on the workers.
public final class TargetDaemon: @unchecked Sendable {
    // SAFETY: after `start`, everything below is touched by the control thread
    // only, except `shared` (behind its lock), `stopFlag` (an atomic), the
    // workers' hand-off API and `mailbox` (control requests, run on the control thread).
    /// The configuration the daemon started with (`runningConfig` adds the runtime changes).
    public let config: TargetConfig
    let logger: Logger
    /// Exports by name (the control thread's after `start`: control methods go through `mailbox`).
    public internal(set) var exports: [String: Export] {
        didSet { publishExports() }
    }
    /// Export names in the order they were added (the running configuration lists them so).
    var exportOrder: [String]
    /// Deleted exports whose connections are still draining, by name: the name stays taken
    /// until the last one is gone (and with it the export's last use of its storage).
    var deleting: [String: Export] = [:]
    /// Grown exports waiting for their old selves' connections to drain (`export_resize`,
    /// an rbd resize), by name: served once `deleting` no longer holds the name.
    var resized: [String: Export] = [:]
    /// When each export whose cluster client was fenced may next be tried to reopen
    /// (monotonic ns), and the wait after that one fails (2 s doubling to 60 s).
    var reopenAttempts: [String: (next: UInt64, wait: UInt64)] = [:]
    /// Control requests to run on the control thread (`controlMethods()`).
    let mailbox: ControlMailbox
    /// Networks (packet endpoints) by name.
    /// Networks by name (the control thread's after `start`; `network_create`/`network_delete`).
    public internal(set) var networks: [String: PacketNetwork] {
        didSet { publishNetworks() }
    }
    /// Network names in the order they were added.
    var networkOrder: [String]
    /// The Ceph clusters RBD exports open their images through (and the connections to them).
    let ceph: CephClusters
    /// Who may connect: the target's name and secret, the hosts it knows.
    /// Read by each new connection's handshake; replaced by `host_add`/`host_remove` (control thread).
    var policy: AccessPolicy
    /// The hosts the target knows now: the configuration's, then `host_add`/`host_remove` (control thread).
    var hosts: [HostConfig]
    /// Which hosts each endpoint (export or network) admits, by name.
    var access: [String: AccessPolicy.Endpoint]
    private let listener: Listener
    private var workers: [TargetWorker] = []
    var context: VerbsContext?
    var deviceInfo: DeviceInfo?
    let controlWake: EventFD
    private let stopFlag = Atomic<Bool>(false)
    /// When the control loop last went round (monotonic ns): `isHealthy`'s evidence.
    private let heartbeat = Atomic<UInt64>(0)
    /// Path probes answered (initiators' checks of a standby gateway; control thread writes).
    let pathProbes = Atomic<UInt64>(0)
    private var thread: OSThread?
    /// What the workers and the stats writer share with the control thread.
    struct Shared {
        /// Queues and ports the workers retired, for the control thread to release.
        var retired: [TargetQueue] = []
        var retiredPorts: [PacketPort] = []
        /// The stats file's view: every worker's counters and the live packet ports.
        var workerCounters: [TargetCounters] = []
        var ports: [ObjectIdentifier: (network: String, port: PacketPort)] = [:]
        /// Every network (control thread publishes), for the stats.
        var networks: [PacketNetwork] = []
        /// Every served export's name, counters and capacity (control thread publishes).
        var exports: [(name: String, counters: ExportCounters, capacity: UInt64)] = []
    }
    let shared = Locked(Shared())
    /// Live connections by queue identity: the control plane's view.
    private var live: [ObjectIdentifier: Live] = [:]
    private var finalCounters: TargetCounters?

    /// A block queue (queue + worker) or a packet port (port + network).
    private struct Live {
        var queue: TargetQueue?
        var port: PacketPort?
        let connection: Connection
        var worker: TargetWorker?
        var network: PacketNetwork?
        let hostID: [UInt8]
        /// Registered buffer bytes this connection holds (`max_memory_per_host`).
        var bytes = 0
        /// Cut by the target (`dropConnections(of:cut:)`): no longer its host's, so not counted
        /// against the host's limits while it waits to be released.
        var cut = false
    }

    /// Device CQ entries per worker (capped by the device's maximum).
    static let workerCQCapacity = 32_767
    /// io_uring entries per worker: the sum of the queue depths it may serve.
    static let workerRingEntries = 4096
    /// RDMA READs in flight per connection, each way.
    static let readDepth = 16
    /// Transport ACK timeout exponent for accepted connections: 4.096 µs × 2^18 ≈ 1.07 s per
    /// retry, so on an RNIC a peer that vanished without disconnecting fails our next work
    /// request after about 8 s. Soft-RoCE retries for ever at the retry count 7 initiators
    /// ask for, and an idle connection posts nothing: the workers' liveness tick
    /// (`PeerLiveness`: keepalive probe, peer timeout) covers both.
    static let ackTimeout: UInt8 = 18

    /// Opens every export and binds the listener. Fails on the first export that cannot be opened.
    public init(config: TargetConfig, logger: Logger) throws(TargetError) {
        do { try config.validate() } catch { throw .config(error) }
        self.config = config
        self.logger = logger
        (policy, access) = try Self.accessPolicy(config, logger: logger)
        hosts = config.hosts
        ceph = CephClusters(config.cephClusters)
        var exports: [String: Export] = [:]
        for e in config.exports {
            let export: Export
            do { export = try Export(config: e, ceph: ceph, logger: logger) } catch { throw .export(name: e.name, error) }
            exports[e.name] = export
            logger.info("export \(e.name): \(Self.describe(export))")
        }
        self.exports = exports
        exportOrder = config.exports.map(\.name)
        var networks: [String: PacketNetwork] = [:]
        let retireBox = RetireBox()
        for n in config.networks {
            do {
                networks[n.name] = try PacketNetwork(config: n, busyPoll: config.busyPoll,
                                                     keepaliveNanoseconds: UInt64(config.keepaliveSeconds * 1e9),
                                                     peerTimeoutNanoseconds: UInt64(config.peerTimeoutSeconds * 1e9),
                                                     logger: logger,
                                                     retire: { p in retireBox.daemon?.retirePort(p) })
            } catch {
                throw .network(name: n.name, error)
            }
        }
        self.networks = networks
        networkOrder = config.networks.map(\.name)
        do {
            listener = try Listener(address: FabricAddress(parsing: config.listen))
        } catch {
            throw .fabric(error)
        }
        do {
            controlWake = try EventFD()
            mailbox = try ControlMailbox()
        } catch { throw .system(error) }
        retireBox.daemon = self
    }

    deinit {
        stop()
    }

    /// Whether the control loop (accepts, disconnects, retirements, control requests) went
    /// round within the last 10 s; it goes round at least once a second when healthy. The
    /// systemd watchdog is pinged only while this holds.
    public var isHealthy: Bool {
        let beat = heartbeat.load(ordering: .relaxed)
        return beat != 0 && monotonicNanoseconds() &- beat < 10_000_000_000
    }

    /// The bound port (useful with port 0).
    public var port: UInt16 { listener.port }

    /// Starts the workers (now, when the listener is bound to a device; else at the first connection) and the control thread.
    public func start() throws(TargetError) {
        for e in exports.values { watchImage(e) }
        publishExports()
        publishNetworks()
        if let ctx = listener.context { try makeWorkers(on: ctx) }
        do { thread = try OSThread(name: "vireo-ctl") { [self] in controlLoop() } } catch { throw .system(error) }
        logger.info("serving \(exports.count) export(s), \(networks.count) network(s) on \(listener.address.host):\(port) with \(config.workers) worker(s)")
    }

    /// Stops accepting, stops the workers, releases every connection. Idempotent.
    public func stop() {
        guard finalCounters == nil, thread != nil || !workers.isEmpty else { return }
        stopFlag.store(true, ordering: .releasing)
        controlWake.signal()
        thread?.join()
        mailbox.close()
        thread = nil
        let total = TargetCounters()
        for w in workers {
            for q in w.stop() { q.release(disconnectTimeoutMilliseconds: 200) }
            total.add(w.counters)
        }
        for q in takeRetired() { q.release(disconnectTimeoutMilliseconds: 200) }
        for n in networks.values {
            for p in n.stop() {
                // One line per port still connected, like the line a port that leaves gets.
                logger.info("\(p.peer) (queue \(p.queueIndex)) on network \(n.name) at shutdown: \(p.counters.summary)")
                p.release(disconnectTimeoutMilliseconds: 200)
            }
            logger.info("network \(n.name): \(n.totals.summary)")
        }
        for p in takeRetiredPorts() { p.release(disconnectTimeoutMilliseconds: 200) }
        live.removeAll()
        shared.withLock { $0.ports.removeAll() }
        finalCounters = total
        logger.info("stopped: \(total.summary)")
    }

    /// Totals over the workers (live values are approximate while serving).
    public var counters: TargetCounters {
        if let finalCounters { return finalCounters }
        let total = TargetCounters()
        for w in workers { total.add(w.counters) }
        return total
    }

    /// Runs until SIGINT/SIGTERM (blocked by the caller with `TerminationSignal.block()`).
    public func runUntilTerminated() throws(TargetError) {
        try start()
        let sig = TerminationSignal.wait()
        logger.info("signal \(sig): shutting down")
        stop()
    }

    private func makeWorkers(on ctx: VerbsContext) throws(TargetError) {
        guard workers.isEmpty else { return }
        let info: DeviceInfo
        do { info = try ctx.query() } catch { throw .fabric(error) }
        deviceInfo = info
        context = ctx
        let cqCap = max(1024, min(Self.workerCQCapacity, info.maxCQE))
        let pool = sharedReceivePool(device: info, cqCapacity: cqCap)
        for i in 0..<config.workers {
            let w: TargetWorker
            do {
                w = try TargetWorker(
                    index: i, context: ctx, cqCapacity: cqCap, ringEntries: Self.workerRingEntries,
                    busyPoll: config.busyPoll, sharedReceives: pool,
                    keepaliveNanoseconds: UInt64(config.keepaliveSeconds * 1e9),
                    peerTimeoutNanoseconds: UInt64(config.peerTimeoutSeconds * 1e9),
                    logger: logger, retire: { [weak self] q in self?.retireFromWorker(q) })
            } catch {
                throw .fabric(error)
            }
            do { try w.start() } catch { throw .system(error) }
            workers.append(w)
            shared.withLock { $0.workerCounters.append(w.counters) }
        }
        for n in networks.values.sorted(by: { $0.name < $1.name }) {
            do { try n.start(context: ctx, maxCQE: info.maxCQE) } catch { throw .fabric(error) }
        }
    }

    /// Reads the target's and the hosts' secrets and decides what each endpoint admits;
    /// warns about every endpoint open to any host and every host known by name only.
    static func accessPolicy(_ config: TargetConfig, logger: Logger) throws(TargetError)
        -> (AccessPolicy, [String: AccessPolicy.Endpoint]) {
        func key(_ path: String, for what: String) throws(TargetError) -> HandshakeKey {
            do { return try HandshakeKey(file: path, for: what) } catch { throw .config(error) }
        }
        let targetKey: HandshakeKey?
        if let f = config.keyFile { targetKey = try key(f, for: "key_file") } else { targetKey = nil }
        var hosts: [String: [HandshakeKey]] = [:]
        for h in config.hosts {
            var keys: [HandshakeKey] = []
            for f in h.keyFiles { keys.append(try key(f, for: "host '\(h.name)'")) }
            hosts[h.name] = keys
            if keys.isEmpty {
                logger.warning("host \(h.name) has no key_file: any machine that sends its name is taken for it (no proof checked)")
            }
        }
        let name = config.name ?? HandshakeName.derived(prefix: "vireo-target:", machine: machineHostName())
        var access: [String: AccessPolicy.Endpoint] = [:]
        let endpoints = config.exports.map { ("export", $0.name, $0.access) } + config.networks.map { ("network", $0.name, $0.access) }
        for (kind, endpoint, a) in endpoints {
            access[endpoint] = endpointRule(kind: kind, name: endpoint, a, config: config, logger: logger)
        }
        logger.info("target name \(name); \(targetKey == nil ? "no key_file: initiators cannot authenticate this target" : "proves itself with its key_file"); \(hosts.count) host(s) configured")
        return (AccessPolicy(targetName: name, targetKey: targetKey, hosts: hosts), access)
    }

    /// Which hosts one endpoint admits: its own `allowed_hosts`/`allow_any_host`; without
    /// either, any host while no host is configured (warned), else none (warned).
    static func endpointRule(kind: String, name endpoint: String, _ a: EndpointAccessConfig, config: TargetConfig,
                             logger: Logger) -> AccessPolicy.Endpoint {
        let rule: AccessPolicy.Endpoint
        if a.allowAnyHost == true {
            rule = AccessPolicy.Endpoint(allowAnyHost: true)
        } else if let list = a.allowedHosts {
            rule = AccessPolicy.Endpoint(allowAnyHost: false, allowedHosts: Set(list))
        } else if config.hosts.isEmpty {
            rule = AccessPolicy.Endpoint(allowAnyHost: true)
            logger.warning("\(kind) \(endpoint) is open to ANY host that reaches \(config.listen): no [[host]] is configured. Configure hosts and allowed_hosts, or set allow_any_host = true to say this is meant")
        } else {
            rule = AccessPolicy.Endpoint(allowAnyHost: false)
            logger.warning("\(kind) \(endpoint) admits no host: hosts are configured and it has no allowed_hosts (nor allow_any_host)")
        }
        if rule.allowAnyHost, a.allowAnyHost == true {
            logger.notice("\(kind) \(endpoint): allow_any_host: any host that reaches the target may connect")
        }
        return rule
    }

    static func describe(_ e: Export) -> String {
        let c = e.config
        let backing: String
        switch c.backing {
        case .file(let p): backing = "file \(p)" + (e.store.isDirect ? " (O_DIRECT)" : " (buffered)")
        case .device(let p): backing = "device \(p)" + (e.store.isDirect ? " (O_DIRECT)" : " (buffered)")
        case .memory: backing = "memory"
        case .rbd(let spec):
            backing = "rbd \(spec) (cluster \(c.cephCluster ?? "default"), client.\(e.store.image.map { String($0.connection.instanceID) } ?? "?"), io_timeout \(c.ioTimeoutSeconds) s)"
        }
        return "\(backing), \(e.store.capacity) bytes, block \(c.blockSize)" + (c.readOnly ? ", read-only" : "")
    }

    // MARK: retire hand-off (worker → control plane)

    private func retireFromWorker(_ q: TargetQueue) {
        shared.withLock { $0.retired.append(q) }
        controlWake.signal()
    }

    func retirePort(_ p: PacketPort) {
        shared.withLock { $0.retiredPorts.append(p) }
        controlWake.signal()
    }

    private func takeRetiredPorts() -> [PacketPort] {
        shared.withLock { s in
            let r = s.retiredPorts
            s.retiredPorts = []
            return r
        }
    }

    private func takeRetired() -> [TargetQueue] {
        shared.withLock { s in
            let r = s.retired
            s.retired = []
            return r
        }
    }

    // MARK: the control loop

    private func controlLoop() {
        let poller = Poller(capacity: 3 + TargetWorker.maxQueues * 4)
        var watched: [Live] = []
        var dirty = true
        while !stopFlag.load(ordering: .acquiring) {
            heartbeat.store(monotonicNanoseconds(), ordering: .relaxed)
            if dirty {
                poller.removeAll()
                poller.add(listener.eventFD)
                poller.add(controlWake.rawValue)
                poller.add(mailbox.wakeFD)
                watched = Array(live.values)
                for w in watched where poller.count < poller.capacity { poller.add(w.connection.eventFD) }
                dirty = false
            }
            do { try poller.wait(timeoutMilliseconds: 1000) } catch {
                logger.error("control: \(error)")
                continue
            }
            if stopFlag.load(ordering: .acquiring) { break }
            if poller.isReady(1) {
                controlWake.drain()
                followImages()
            }
            reopenFencedImages()
            if poller.isReady(2) {
                mailbox.runPending()
                dirty = true  // a request may have dropped connections or changed endpoints
            }
            for q in takeRetired() {
                release(q)
                dirty = true
            }
            for p in takeRetiredPorts() {
                release(p)
                dirty = true
            }
            if poller.isReady(0) {
                while true {
                    do {
                        guard let req = try listener.nextRequest(timeoutMilliseconds: 0) else { break }
                        if handle(req) { dirty = true }
                    } catch {
                        logger.error("listener: \(error)")
                        break
                    }
                }
            }
            // Connection events (DISCONNECTED, DEVICE_REMOVAL).
            for (i, w) in watched.enumerated() where 3 + i < poller.count && poller.isReady(3 + i) {
                // The peer's disconnect does not move our QP to error by itself: tell the worker.
                switch try? w.connection.pollEvent(timeoutMilliseconds: 0) {
                case .disconnected?, .deviceRemoved?:
                    if let q = w.queue { w.worker?.requestDrop(q) }
                    if let p = w.port { w.network?.requestDrop(p) }
                default:
                    break
                }
            }
        }
    }

    /// Publishes the networks for the stats (control thread, or start).
    func publishNetworks() {
        let list = networks.values.sorted { $0.name < $1.name }
        shared.withLock { $0.networks = list }
    }

    /// Publishes the served exports for the stats (control thread, or init).
    func publishExports() {
        let list = exports.values.sorted { $0.config.name < $1.config.name }.map { ($0.config.name, $0.counters, $0.store.capacity) }
        shared.withLock { $0.exports = list }
    }

    /// Releases a retired queue and its counts.
    private func release(_ q: TargetQueue) {
        if let entry = live.removeValue(forKey: ObjectIdentifier(q)), let worker = entry.worker {
            worker.queueCount -= 1
            worker.completionBudgetLeft += q.completionBudget
            worker.ringBudgetLeft += q.depth
            q.export.queues -= 1
            q.export.queuesByHost[entry.hostID, default: 1] -= 1
            if q.export.queuesByHost[entry.hostID] == 0 { q.export.queuesByHost[entry.hostID] = nil }
            let name = q.export.config.name
            if q.export.queues == 0, let gone = deleting[name], gone === q.export {
                deleting[name] = nil
                if let grown = resized.removeValue(forKey: name) {
                    exports[name] = grown
                    logger.notice("export \(name) resized: its old connections are gone; serving \(grown.store.capacity) bytes (initiators reconnect and pass the new capacity to their guests)")
                } else {
                    logger.notice("export \(name) deleted: its last connection is gone")
                }
            }
        }
        q.release()
    }

    /// Asks the workers to drop every connection to `export` (a forced delete, a resize);
    /// each is released as its worker retires it, once its storage operations are done
    /// (control thread). `cut`: disconnect each now as well (its queue pair goes to error, so
    /// the RNIC no longer touches its peer's memory, and the initiator reconnects at once),
    /// and stop counting it against its host's limits: for an export whose cluster client was
    /// fenced, whose operations librbd may hold for ever and none of which can land.
    /// Returns how many, and the registered bytes they hold.
    @discardableResult
    func dropConnections(of export: Export, cut: Bool = false) -> (count: Int, bytes: Int) {
        var dropped = (count: 0, bytes: 0)
        for (key, entry) in live {
            guard let q = entry.queue, q.export === export, !entry.cut else { continue }
            if cut {
                entry.connection.disconnect(timeoutMilliseconds: 0)
                live[key]?.cut = true
            }
            entry.worker?.requestDrop(q)
            dropped.count += 1
            dropped.bytes += entry.bytes
        }
        return dropped
    }

    /// Releases a retired packet port and its budget.
    func release(_ p: PacketPort) {
        if let entry = live.removeValue(forKey: ObjectIdentifier(p)) { entry.network?.forget(p) }
        _ = shared.withLock { $0.ports.removeValue(forKey: ObjectIdentifier(p)) }
        p.release()
    }

    /// Admits or rejects one request. Returns true when a connection was added.
    private func handle(_ req: ConnectionRequest) -> Bool {
        func reject(_ r: ConnectReject) { self.reject(req, r) }
        let admitted: Admission.Admitted
        let decision = Admission.decide(privateData: req.privateData, exports: exports, networks: Set(networks.keys))
        if case .reject(let r) = decision {
            reject(r)
            return false
        }
        guard let ctx = req.context else {
            reject(ConnectReject(.internalError, "connection request without a device"))
            return false
        }
        do { try makeWorkers(on: ctx) } catch {
            reject(ConnectReject(.internalError, "target cannot start its workers: \(error)"))
            return false
        }
        guard ctx.raw == context?.raw else {
            reject(ConnectReject(.internalError, "connection arrived on another RDMA device than the target serves"))
            return false
        }
        switch decision {
        case .admit(let a): admitted = a
        case .packet(let r):
            if let r = hostLimitReject(r) { reject(r); return false }
            return handlePacket(req, r)
        case .reject: return false
        }
        if let r = hostLimitReject(admitted.request) {
            reject(r)
            return false
        }
        let g = admitted.geometry
        let depth = Int(g.queueDepth)
        let segments = Int(g.maxSegments)
        let maxWR = deviceInfo?.maxQueuePairWorkRequests ?? 1024
        let sendDepth = min(max(segments + 1, min(depth * (segments + 1), 1024)), maxWR)
        // Commands arrive in the worker's shared receive pool when they fit its buffers (an
        // export added with larger commands than the pool was sized for gets receives of its own).
        let receiveSize = TargetQueue.receiveSize(g)
        let fitsShared = { (w: TargetWorker) in (w.sharedReceives?.bufferSize ?? 0) >= receiveSize }
        let cqNeed = { (w: TargetWorker) in sendDepth + (fitsShared(w) ? 0 : depth) }
        // The least loaded worker with room for this connection's completions and storage operations;
        // an RBD export's connections all go to the worker its image is pinned to (the first one's).
        let hasRoom = { (w: TargetWorker) in
            w.completionBudgetLeft >= cqNeed(w) && w.ringBudgetLeft >= depth && w.queueCount < TargetWorker.maxQueues
        }
        let pinned = admitted.export.store.pinnedWorker.map { i in workers.first { $0.index == i } } ?? nil
        guard let worker = pinned.flatMap({ hasRoom($0) ? $0 : nil })
            ?? (pinned == nil ? workers.filter(hasRoom).min(by: { $0.queueCount < $1.queueCount }) : nil) else {
            reject(ConnectReject(.queueLimit, pinned == nil ? "target is at its connection capacity"
                                 : "the worker serving rbd export \(admitted.request.name) is at its connection capacity"))
            return false
        }
        if admitted.export.store.image != nil, pinned == nil {
            do { _ = try admitted.export.store.pin(worker: worker.index, eventFD: worker.storageEventFD) } catch {
                logger.error("export \(admitted.request.name): \(error)")
                reject(ConnectReject(.internalError, "export \(admitted.request.name) cannot deliver completions: \(error)"))
                return false
            }
            logger.info("export \(admitted.request.name): rbd image pinned to worker \(worker.index)")
        }
        let shared = fitsShared(worker) ? worker.sharedReceives : nil
        let bytes = TargetQueue.registeredBytes(g, sharedReceives: shared != nil)
        if let r = hostMemoryReject(admitted.request, adding: bytes) {
            reject(r)
            return false
        }
        let resources = ConnectionResources(
            sendCQ: worker.cq, receiveCQ: worker.cq, sharedReceiveQueue: shared != nil ? worker.sharedReceiveQueue : nil,
            queuePair: QueuePairConfig(sendDepth: sendDepth, receiveDepth: depth, maxSendSegments: 1,
                                       maxReceiveSegments: 1, maxInlineData: 64, readDepth: Self.readDepth))
        let accept = TargetHandshake.accept(geometry: g.encoded(), policy: policy)
        let handshake = TargetHandshake(
            policy: policy, endpoint: access[admitted.request.name] ?? AccessPolicy.Endpoint(allowAnyHost: false),
            endpointDescription: "export \(admitted.request.name)", request: Array(req.privateData.prefix(ConnectRequest.size)),
            accept: accept, claimedHostID: admitted.request.hostID)
        let connection: Connection
        do {
            connection = try req.accept(resources: resources, privateData: accept, ackTimeout: Self.ackTimeout)
        } catch {
            logger.error("accept \(req.peerAddress) for \(admitted.request.name): \(error)")
            return false
        }
        let q: TargetQueue
        do {
            q = try TargetQueue(connection: connection, export: admitted.export, geometry: g, sendQueueDepth: sendDepth,
                                queueIndex: admitted.request.queueIndex, handshake: handshake,
                                handshakeDeadline: handshakeDeadline(), sharedReceives: shared)
        } catch {
            logger.error("\(req.peerAddress) for \(admitted.request.name): cannot allocate its buffers: \(error)")
            connection.disconnect()
            return false
        }
        worker.completionBudgetLeft -= cqNeed(worker)
        worker.ringBudgetLeft -= depth
        worker.queueCount += 1
        admitted.export.queues += 1
        admitted.export.queuesByHost[admitted.request.hostID, default: 0] += 1
        live[ObjectIdentifier(q)] = Live(queue: q, port: nil, connection: connection, worker: worker, network: nil,
                                         hostID: admitted.request.hostID, bytes: bytes)
        logger.info("\(req.peerAddress) connected to \(admitted.request.name) queue \(admitted.request.queueIndex) (depth \(depth), \(segments) segments, max I/O \(g.maxIOBytes)) on worker \(worker.index)")
        worker.adopt(q)
        return true
    }

    /// Each worker's shared receive pool: `shared_receives` buffers (at most what the device's
    /// SRQ holds, leaving half the CQ for sends), each big enough for the largest command any
    /// configured export grants; nil when turned off or on a device without SRQs.
    private func sharedReceivePool(device: DeviceInfo, cqCapacity: Int) -> (count: Int, bufferSize: Int)? {
        guard config.sharedReceives > 0 else { return nil }
        guard device.maxSharedReceiveQueues >= config.workers else {
            logger.notice("\(device.name) has \(device.maxSharedReceiveQueues) shared receive queues for \(config.workers) workers: each block connection posts receives of its own")
            return nil
        }
        let count = min(config.sharedReceives, device.maxSharedReceiveQueueWorkRequests, cqCapacity / 2)
        // Sized for the configured exports, or for an export at the defaults when none is
        // configured yet (exports created later with larger commands get receives of their own).
        let sized = config.exports.isEmpty ? [ExportConfig(name: "default", backing: .memory)] : config.exports
        let size = sized.map { TargetQueue.largestReceiveSize($0) }.max()!
        logger.info("shared receives: \(count) buffers of \(size) bytes per worker")
        return (count, size)
    }

    /// A reject when the request's host already holds `max_connections_per_host` connections
    /// (counted by host id, which the handshake then checks against the host's name).
    private func hostLimitReject(_ r: ConnectRequest) -> ConnectReject? {
        let held = live.values.reduce(0) { $0 + ($1.hostID == r.hostID && !$1.cut ? 1 : 0) }
        guard held >= config.maxConnectionsPerHost else { return nil }
        var rj = ConnectReject(.queueLimit, "this host already holds its maximum of \(config.maxConnectionsPerHost) connections on the target")
        rj.kind = r.kind
        return rj
    }

    /// A reject when `bytes` more would take the request's host past `max_memory_per_host`.
    private func hostMemoryReject(_ r: ConnectRequest, adding bytes: Int) -> ConnectReject? {
        let held = live.values.reduce(0) { $0 + ($1.hostID == r.hostID && !$1.cut ? $1.bytes : 0) }
        guard held + bytes > config.maxMemoryPerHost else { return nil }
        var rj = ConnectReject(.queueLimit, "this host's connections already hold \(held) bytes of target buffers; \(bytes) more would pass max_memory_per_host (\(config.maxMemoryPerHost))")
        rj.kind = r.kind
        return rj
    }

    /// Refuses `req` with `r`'s reason and message, and logs it.
    private func reject(_ req: ConnectionRequest, _ r: ConnectReject) {
        if r.reason == .probeAnswer {
            pathProbes.add(1, ordering: .relaxed)
            logger.debug("path probe from \(req.peerAddress): \(r.message)")
        } else {
            logger.notice("rejected \(req.peerAddress): \(r.message)")
        }
        do { try req.reject(privateData: r.encoded()) } catch { logger.error("reject \(req.peerAddress): \(error)") }
    }

    /// When a connection accepted now must have sent its hello.
    private func handshakeDeadline() -> UInt64 {
        monotonicNanoseconds() &+ UInt64(config.handshakeTimeoutSeconds * 1e9)
    }

    /// Admits or rejects a packet connection to a configured network.
    private func handlePacket(_ req: ConnectionRequest, _ r: ConnectRequest) -> Bool {
        guard let network = networks[r.name] else { return false }
        switch network.decide(r, peer: req.peerAddress) {
        case .reject(let rj):
            reject(req, rj)
            return false
        case .accept(let geometry, let resources, let sendSlots):
            let bytes = PacketPort.registeredBytes(geometry, sendSlots: sendSlots)
            if let rj = hostMemoryReject(r, adding: bytes) {
                reject(req, rj)
                return false
            }
            let accept = TargetHandshake.accept(geometry: geometry.encoded(), policy: policy)
            let handshake = TargetHandshake(
                policy: policy, endpoint: access[r.name] ?? AccessPolicy.Endpoint(allowAnyHost: false),
                endpointDescription: "network \(r.name)", request: Array(req.privateData.prefix(ConnectRequest.size)),
                accept: accept, claimedHostID: r.port == nil ? r.hostID : nil,
                boundPort: r.port?.name.flatMap { n in
                    network.config.ports.first { $0.name == n }?.hosts.map { (n, Set($0)) }
                })
            let connection: Connection
            do {
                connection = try req.accept(resources: resources, privateData: accept, ackTimeout: Self.ackTimeout)
            } catch {
                logger.error("accept \(req.peerAddress) for network \(r.name): \(error)")
                return false
            }
            let port: PacketPort
            do {
                port = try PacketPort(connection: connection, request: r, geometry: geometry, sendSlots: sendSlots,
                                      handshake: handshake, handshakeDeadline: handshakeDeadline())
            } catch {
                logger.error("\(req.peerAddress) for network \(r.name): cannot allocate its buffers: \(error)")
                connection.disconnect()
                return false
            }
            live[ObjectIdentifier(port)] = Live(queue: nil, port: port, connection: connection, worker: nil,
                                                network: network, hostID: r.hostID, bytes: bytes)
            shared.withLock { $0.ports[ObjectIdentifier(port)] = (network.name, port) }
            network.adopt(port)
            return true
        }
    }
}

/// Lets the networks' retire callbacks reach the daemon, which does not exist yet when they are made.
private final class RetireBox: @unchecked Sendable {
    // SAFETY: set once at the end of the daemon's init, before any worker runs.
    weak var daemon: TargetDaemon?
}
