import CVireoSys
import Logging
import VireoFabric
import VireoSys
import VireoTargetCore
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// One packet endpoint: a named L2 network, its switch, its ports and its
/// optional TAP uplink, served by one worker thread of its own.
///
/// Threading: every port of a network lives on the network's worker (the
/// network is pinned to one thread), so forwarding between ports is a copy
/// between two buffers that thread owns: no cross-thread hand-off, no lock,
/// no ring on the data path. The worker follows the block target's model: one
/// completion channel + CQ shared by all its connections, poll-then-sleep on
/// the channel fd, the TAP fd and a wake eventfd; the control plane hands it
/// ports (locked list + eventfd) and it retires them back through `retire`.
public final class PacketNetwork: @unchecked Sendable {
    // SAFETY: the data-path state (table, switch, ports, TAP buffer) is touched
    // only by the worker thread; the hand-off lists are guarded by `lock`;
    // `stopFlag`/`handoffHint`/`livePorts` are word atomics; the admission
    // bookkeeping belongs to the control thread.
    public let config: NetworkConfig
    let logger: Logger
    public let maxFrame: Int
    let tap: TapDevice?
    /// Switch port number of the TAP uplink (after every connection slot).
    let tapPort: Int
    /// Where TAP frames are read, behind a zero virtio-net header.
    let tapBuffer: UnsafeMutableRawPointer
    /// Totals over every port this network ever had (racy live view).
    public let totals = PortCounters()
    /// The clock the switch ages entries with.
    let clock: @Sendable () -> UInt64

    private(set) var channel: CompletionChannel?
    private(set) var cq: CompletionQueue?
    private var completions = CompletionBuffer(capacity: 64)
    private let poller = Poller(capacity: 3)
    private let wake: EventFD
    private let spinBudget: Int
    private let retire: @Sendable (PacketPort) -> Void

    var switching: PacketSwitch
    /// Connections (table slots) grouped into switch ports (NIC queue pairs with one key).
    var groups: PortGroups
    var table: [PacketPort?]
    private var generations: [UInt16]
    var dirty: [Int]

    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var handoff: [PacketPort] = []
    private var dropRequests: [PacketPort] = []
    private let handoffHint: UnsafeMutablePointer<Int>
    private let stopFlag: UnsafeMutablePointer<Int>
    private let livePorts: UnsafeMutablePointer<Int>
    private var thread: OSThread?

    // Control-plane bookkeeping.
    var completionBudgetLeft = 0
    var admittedPorts = 0
    /// Port keys of admitted connections: the host holding each, and how many
    /// of its connections. A key joins connections into one switch port, so
    /// only the host already holding it may add queue pairs to it.
    private var keyHolders: [PortKey: (host: Substring, count: Int)] = [:]

    /// Device CQ entries per network (capped by the device's maximum).
    static let cqCapacity = 16_384
    /// Peer liveness (see `PeerLiveness`): probe after this much idle silence, drop after this much
    /// silence with sends posted; the tick's period, and its last run.
    let keepaliveNanoseconds: UInt64
    let peerTimeoutNanoseconds: UInt64
    private let tickNanoseconds: UInt64
    private var lastTick: UInt64 = 0

    /// Delay after which reposted buffers are announced even when few.
    static let creditDelayNanoseconds: UInt64 = 1_000_000

    /// Opens the TAP uplink (if configured). The worker starts with `start(context:)`.
    public init(config: NetworkConfig, busyPoll: Bool = false,
                keepaliveNanoseconds: UInt64 = 5_000_000_000, peerTimeoutNanoseconds: UInt64 = 15_000_000_000,
                logger: Logger, clock: @escaping @Sendable () -> UInt64 = { monotonicNanoseconds() },
                retire: @escaping @Sendable (PacketPort) -> Void) throws(SystemError) {
        self.config = config
        self.keepaliveNanoseconds = keepaliveNanoseconds
        self.peerTimeoutNanoseconds = peerTimeoutNanoseconds
        tickNanoseconds = min(1_000_000_000, max(keepaliveNanoseconds / 2, 1_000_000))
        self.logger = logger
        self.clock = clock
        self.retire = retire
        maxFrame = config.maxFrameBytes
        tap = try config.tap.map { name throws(SystemError) in try TapDevice(name: name, mtu: config.mtu) }
        tapPort = config.maxPorts
        tapBuffer = .allocate(byteCount: maxFrame, alignment: 64)
        tapBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: maxFrame)
        wake = try EventFD()
        spinBudget = busyPoll ? Int.max : 100
        switching = PacketSwitch(agingSeconds: config.agingSeconds, tableCapacity: config.macTableSize,
                                 maxPorts: config.maxPorts + 1, allowed: config.allowedMACs)
        table = [PacketPort?](repeating: nil, count: config.maxPorts)
        groups = PortGroups(capacity: config.maxPorts)
        generations = [UInt16](repeating: 0, count: config.maxPorts)
        dirty = []
        dirty.reserveCapacity(config.maxPorts)
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        handoffHint = .allocate(capacity: 1)
        handoffHint.initialize(to: 0)
        stopFlag = .allocate(capacity: 1)
        stopFlag.initialize(to: 0)
        livePorts = .allocate(capacity: 1)
        livePorts.initialize(to: 0)
        if tap != nil { switching.addPort(tapPort) }
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        handoffHint.deallocate()
        stopFlag.deallocate()
        livePorts.deallocate()
        tapBuffer.deallocate()
    }

    public var name: String { config.name }
    /// Connected ports the worker serves (racy live view).
    public var portCount: Int { vireo_relaxed_load(livePorts) }
    public var isStarted: Bool { thread != nil }

    /// Creates the CQ on `context` and starts the worker thread (idempotent).
    public func start(context: VerbsContext, maxCQE: Int) throws(FabricError) {
        guard thread == nil else { return }
        let ch = try CompletionChannel(context: context)
        let capacity = max(1024, min(Self.cqCapacity, maxCQE))
        cq = try CompletionQueue(context: context, capacity: capacity, channel: ch)
        channel = ch
        completionBudgetLeft = capacity
        poller.add(ch.fd)
        poller.add(wake.rawValue)
        if let tap { poller.add(tap.fd) }
        do {
            thread = try OSThread(name: "vireo-n-\(config.name)") { [self] in run() }
        } catch {
            throw .call(error)
        }
        let uplink = tap.map { ", uplink TAP \($0.name)" } ?? ""
        let allowList = config.allowedMACs.map { ", \($0.count) allowed MAC(s)" } ?? ""
        logger.info("network \(config.name): MTU \(config.mtu), max frame \(maxFrame) bytes\(uplink)\(allowList)")
    }

    /// Stops the worker and returns every port it still held (for the control plane to release).
    public func stop() -> [PacketPort] {
        vireo_relaxed_store(stopFlag, 1)
        wake.signal()
        thread?.join()
        thread = nil
        var left = table.compactMap { $0 }
        table = [PacketPort?](repeating: nil, count: config.maxPorts)
        groups = PortGroups(capacity: config.maxPorts)
        pthread_mutex_lock(lock)
        left += handoff
        handoff = []
        pthread_mutex_unlock(lock)
        vireo_relaxed_store(livePorts, 0)
        return left
    }

    // MARK: admission (control plane)

    /// The network's answer to a packet connect request.
    public enum Admission {
        case accept(PacketGeometry, ConnectionResources, sendSlots: Int)
        case reject(ConnectReject)
    }

    /// The host part of a peer address ("10.99.0.1:4420" → "10.99.0.1").
    static func host(of peer: String) -> Substring {
        guard let colon = peer.lastIndex(of: ":") else { return Substring(peer) }
        return peer[..<colon]
    }

    /// Decides on `r` (already decoded, version and kind checked, name
    /// matched) from `peer` (its address, for port-key ownership).
    public func decide(_ r: ConnectRequest, peer: String = "") -> Admission {
        func reject(_ reason: RejectReason, _ text: String) -> Admission {
            var rj = ConnectReject(reason, text)
            rj.kind = .packet
            return .reject(rj)
        }
        guard let cq else { return reject(.internalError, "network \(name) is not running") }
        if Int(r.maxIOBytes) < maxFrame {
            return reject(.malformed, "network \(name) carries frames of up to \(maxFrame) bytes; receive buffers of \(r.maxIOBytes) bytes are too small")
        }
        if let problem = portProblem(r.port) { return reject(.noSuchEndpoint, problem) }
        if let k = r.port, let holder = keyHolders[k], holder.host != Self.host(of: peer) {
            return reject(.queueLimit, "network \(name): \(k) is in use by \(holder.host)")
        }
        if admittedPorts >= config.maxPorts {
            return reject(.queueLimit, "network \(name) already has its maximum of \(config.maxPorts) ports")
        }
        // Egress window: as deep as the ingress one (receive_buffers), or the
        // initiator's initial credits if more, so a port can take frames as fast
        // as it sends them (its initial credits are 0 when it connects before a
        // guest posted buffers: sizing by them alone left 16 frames in flight).
        // Shrunk to what the CQ budget still allows, down to 16.
        let receiveCount = config.receiveBuffers + PacketPort.creditMargin
        let minimumSlots = 16
        let wantedSlots = min(max(Int(r.queueDepth), config.receiveBuffers, minimumSlots), Wire.maxQueueDepthLimit)
        let roomForSlots = completionBudgetLeft - receiveCount - PacketPort.creditSendSlots
        if roomForSlots < minimumSlots {
            return reject(.queueLimit, "network \(name) is at its connection capacity")
        }
        let sendSlots = min(wantedSlots, roomForSlots)
        let sendDepth = sendSlots + PacketPort.creditSendSlots
        let resources = ConnectionResources(
            sendCQ: cq, receiveCQ: cq,
            queuePair: QueuePairConfig(sendDepth: sendDepth, receiveDepth: receiveCount, maxSendSegments: 1,
                                       maxReceiveSegments: 1, maxInlineData: 0, readDepth: 1))
        return .accept(PacketGeometry(mtu: UInt32(config.mtu), receiveBuffers: UInt16(config.receiveBuffers),
                                      flags: r.port != nil ? PacketGeometry.flagPortJoined : 0),
                       resources, sendSlots: sendSlots)
    }

    /// Why a connection claiming `key` may not join, or nil. A network that
    /// lists ports takes only those (by name); one that lists none takes
    /// unnamed connections (keyed or not) and refuses names.
    func portProblem(_ key: PortKey?) -> String? {
        let names = config.ports.map(\.name)
        switch key {
        case .named(let n)?:
            if names.contains(n) { return nil }
            return names.isEmpty ? "network \(name) has no named ports (port \(n) asked for)"
                : "network \(name) has no port \(n) (its ports: \(names.joined(separator: ", ")))"
        case .anonymous?, nil:
            return names.isEmpty ? nil : "network \(name) takes named ports only (port=NAME in the NIC's config; its ports: \(names.joined(separator: ", ")))"
        }
    }

    /// Hands a connected port to the worker (control plane) and books its resources.
    public func adopt(_ p: PacketPort) {
        completionBudgetLeft -= p.completionBudget
        admittedPorts += 1
        if let k = p.portKey {
            let n = keyHolders[k]?.count ?? 0
            keyHolders[k] = (Self.host(of: p.peer), n + 1)
        }
        pthread_mutex_lock(lock)
        handoff.append(p)
        vireo_relaxed_store(handoffHint, 1)
        pthread_mutex_unlock(lock)
        wake.signal()
    }

    /// Returns a retired port's resources to the budget (control plane).
    public func forget(_ p: PacketPort) {
        completionBudgetLeft += p.completionBudget
        admittedPorts -= 1
        if let k = p.portKey, let h = keyHolders[k] {
            keyHolders[k] = h.count > 1 ? (h.host, h.count - 1) : nil
        }
    }

    /// Asks the worker to drop `p` (its peer disconnected).
    public func requestDrop(_ p: PacketPort) {
        pthread_mutex_lock(lock)
        dropRequests.append(p)
        vireo_relaxed_store(handoffHint, 1)
        pthread_mutex_unlock(lock)
        wake.signal()
    }

    // MARK: the loop

    private func run() {
        var idle = 0
        while vireo_relaxed_load(stopFlag) == 0 {
            if vireo_relaxed_load(handoffHint) != 0 { takeHandoffs() }
            var work = pollOnce(forceCredits: false)
            if work > 0 { idle = 0; continue }
            idle += 1
            if idle < spinBudget { continue }
            // Before sleeping, announce every reposted buffer: nobody may wait on us for credits.
            work = pollOnce(forceCredits: true)
            if work > 0 { idle = 0; continue }
            do { try cq!.requestNotification() } catch { logger.error("network \(name): \(error)") }
            work = pollOnce(forceCredits: true)
            if work > 0 { idle = 0; continue }
            do { try poller.wait(timeoutMilliseconds: Int32(tickNanoseconds / 1_000_000)) } catch {
                logger.error("network \(name): \(error)")
            }
            do { try cq!.takeChannelEvents() } catch { logger.error("network \(name): \(error)") }
            wake.drain()
            idle = 0
        }
    }

    /// One pass: CQ, TAP, then batched posts and credit messages. Returns the events handled.
    @inline(__always)
    private func pollOnce(forceCredits: Bool) -> Int {
        let now = clock()
        let n: Int
        do { n = try cq!.poll(into: completions) } catch {
            logger.error("network \(name): \(error)")
            return 0
        }
        for i in 0..<n {
            let c = completions[i]
            let qi = WorkID.queue(c.wrId)
            guard qi < table.count, let p = table[qi], generations[qi] == WorkID.generation(c.wrId) else { continue }
            completed(c, port: p, now: now)
        }
        var work = n
        if let tap {
            // Frames from the uplink: read behind a zero virtio-net header.
            for _ in 0..<32 {
                let len = tap.read(into: tapBuffer + Wire.netHeaderSize, capacity: maxFrame - Wire.netHeaderSize)
                if len <= 0 { break }
                work += 1
                fromTap(byteCount: len + Wire.netHeaderSize, now: now)
            }
        }
        flush(now: now, force: forceCredits)
        if now &- lastTick >= tickNanoseconds { livenessTick(now: now) }
        return work
    }

    /// About once a second: every port probes a silent idle peer or is dropped when its peer
    /// left posted sends unacknowledged for the peer timeout.
    private func livenessTick(now: UInt64) {
        lastTick = now
        var dropped = false
        for p in table {
            guard let p else { continue }
            let probes = p.counters.livenessProbes
            if p.checkLiveness(now: now) { dropped = true }
            if p.counters.livenessProbes != probes { totals.probed() }
        }
        if dropped { retireDraining() }
    }

    private func takeHandoffs() {
        pthread_mutex_lock(lock)
        let new = handoff
        handoff.removeAll(keepingCapacity: true)
        let drops = dropRequests
        dropRequests.removeAll(keepingCapacity: true)
        vireo_relaxed_store(handoffHint, 0)
        pthread_mutex_unlock(lock)
        let now = clock()
        for p in new {
            guard let slot = table.firstIndex(where: { $0 == nil }) else {
                p.drop("network \(name) has no free port slot")
                retire(p)
                continue
            }
            table[slot] = p
            generations[slot] &+= 1
            p.tableIndex = slot
            p.generation = generations[slot]
            let (group, isNew) = groups.join(slot: slot, key: p.portKey)
            if isNew {
                switching.addPort(group)
                if let n = p.portKey?.name { switching.setAllowList(config.ports.first { $0.name == n }?.allowedMACs, port: group) }
            }
            p.liveness = PeerLiveness(keepaliveNanoseconds: keepaliveNanoseconds, timeoutNanoseconds: peerTimeoutNanoseconds, now: now)
            for i in 0..<p.receiveCount { p.repost(i, returnsCredit: false, now: now) }
            do { try p.queuePair.post(p.receiveBatch) } catch { p.drop("posting its receive buffers failed: \(error)") }
            vireo_relaxed_store(livePorts, vireo_relaxed_load(livePorts) + 1)
            let member = p.portKey.map { " (\($0), queue pair \(groups.members(of: group).count) of its NIC)" } ?? ""
            logger.info("\(p.peer) joined network \(name) as port \(group)\(member) (connection \(slot), queue \(p.queueIndex), \(p.credits) initial credits)")
            if p.isDraining { retireDraining() }
        }
        for p in drops where p.tableIndex < table.count && table[p.tableIndex] === p {
            p.drop("disconnected")
        }
        retireDraining()
    }

    /// Retires every draining port: out of the table and the switch, to the control plane.
    func retireDraining() {
        for (i, entry) in table.enumerated() {
            guard let p = entry, let reason = p.dropReason else { continue }
            table[i] = nil
            generations[i] &+= 1
            if let (g, empty) = groups.leave(slot: i), empty { switching.removePort(g) }
            vireo_relaxed_store(livePorts, vireo_relaxed_load(livePorts) - 1)
            if p.isDirty { dirty.removeAll { $0 == i }; p.isDirty = false }
            if reason == "disconnected" {
                logger.info("\(p.peer) (queue \(p.queueIndex)) left network \(name): \(p.counters.summary)")
            } else {
                logger.warning("dropping port \(p.peer) (queue \(p.queueIndex)) of network \(name): \(reason); \(p.counters.summary)")
            }
            retire(p)
        }
    }
}
