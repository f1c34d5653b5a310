import Logging
import Synchronization
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
/// no ring on the data path. The thread, the hand-off from the control plane
/// and the spin → arm → sleep loop are `EndpointWorker`'s, as for the block
/// target's workers; this is the engine it runs: one completion channel + CQ
/// shared by all its ports, the TAP fd; ports it retires go back through `retire`.
public final class PacketNetwork: EndpointEngine, @unchecked Sendable {
    // SAFETY: the data-path state (table, switch, ports, TAP buffer) is touched
    // only by the worker thread; `EndpointWorker` owns the hand-off; `livePorts`
    // is an atomic; the admission bookkeeping belongs to the control thread.
    public typealias Connection = PacketPort
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
    private let busyPoll: Bool
    private var loop: EndpointWorker<PacketNetwork>?
    /// What this network's thread spends on system calls, sleeps and empty polls.
    package let costs = DataPathCosts()
    private let retire: @Sendable (PacketPort) -> Void

    var switching: PacketSwitch
    /// Connections (table slots) grouped into switch ports (NIC queue pairs with one key).
    var groups: PortGroups
    var table: ConnectionTable<PacketPort>
    var dirty: [Int]
    /// A draining port waits for forwards to finish before it can be retired (`retireDraining`).
    var retirePending = false
    /// How long a draining port waits for its forwards (SENDs from or of its buffers) to finish.
    static let drainTimeoutNanoseconds: UInt64 = 5_000_000_000
    /// The last clock reading of `pollOnce`, and its passes (see there).
    private var lastNow: UInt64 = 0
    private var passes: UInt = 0
    /// Table slots of ports with frames held for their credit (`PacketPort.held`).
    var waiting: [Int]
    /// How long a frame may wait for its destination's credit before it is dropped (`stalled`).
    package let holdTimeoutNanoseconds: UInt64
    private let livePorts = Atomic<Int>(0)

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
    /// silence with sends posted.
    let keepaliveNanoseconds: UInt64
    let peerTimeoutNanoseconds: UInt64

    /// Delay after which reposted buffers are announced even when few.
    static let creditDelayNanoseconds: UInt64 = 1_000_000

    /// Opens the TAP uplink (if configured). The worker starts with `start(context:)`.
    public init(config: NetworkConfig, busyPoll: Bool = false,
                keepaliveNanoseconds: UInt64 = 5_000_000_000, peerTimeoutNanoseconds: UInt64 = 15_000_000_000,
                holdTimeoutNanoseconds: UInt64 = 1_000_000_000, logger: Logger, clock: @escaping @Sendable () -> UInt64 = { monotonicNanoseconds() },
                retire: @escaping @Sendable (PacketPort) -> Void) throws(SystemError) {
        self.config = config
        self.keepaliveNanoseconds = keepaliveNanoseconds
        self.peerTimeoutNanoseconds = peerTimeoutNanoseconds
        self.holdTimeoutNanoseconds = holdTimeoutNanoseconds
        self.logger = logger
        self.clock = clock
        self.retire = retire
        maxFrame = config.maxFrameBytes
        tap = try config.tap.map { name throws(SystemError) in try TapDevice(name: name, mtu: config.mtu) }
        tapPort = config.maxPorts
        tapBuffer = .allocate(byteCount: maxFrame, alignment: 64)
        tapBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: maxFrame)
        self.busyPoll = busyPoll
        switching = PacketSwitch(agingSeconds: config.agingSeconds, tableCapacity: config.macTableSize,
                                 maxPorts: config.maxPorts + 1, allowed: config.allowedMACs)
        table = ConnectionTable(capacity: config.maxPorts)
        groups = PortGroups(capacity: config.maxPorts)
        dirty = []
        dirty.reserveCapacity(config.maxPorts)
        waiting = []
        waiting.reserveCapacity(config.maxPorts)
        if tap != nil {
            switching.addPort(tapPort)
            switching.exemptFromMACLimit(tapPort)
        }
    }

    deinit {
        tapBuffer.deallocate()
    }

    public var name: String { config.name }
    /// Connected ports the worker serves (racy live view).
    public var portCount: Int { livePorts.load(ordering: .relaxed) }
    public var isStarted: Bool { loop != nil }

    /// Creates the CQ on `context` and starts the worker thread (idempotent).
    public func start(context: VerbsContext, maxCQE: Int) throws(FabricError) {
        guard loop == nil else { return }
        let ch = try CompletionChannel(context: context)
        let capacity = max(1024, min(Self.cqCapacity, maxCQE))
        cq = try CompletionQueue(context: context, capacity: capacity, channel: ch)
        channel = ch
        completionBudgetLeft = capacity
        do {
            let l = try EndpointWorker<PacketNetwork>(name: "vireo-n-\(config.name)", busyPoll: busyPoll,
                                                      tickNanoseconds: keepaliveNanoseconds / 2, fds: [ch.fd] + (tap.map { [$0.fd] } ?? []),
                                                      costs: costs)
            try l.start(self, logger: logger)
            loop = l
        } catch {
            throw .call(error)
        }
        let uplink = tap.map { ", uplink TAP \($0.name)" } ?? ""
        let allowList = config.allowedMACs.map { ", \($0.count) allowed MAC(s)" } ?? ""
        logger.info("network \(config.name): MTU \(config.mtu), max frame \(maxFrame) bytes\(uplink)\(allowList)")
    }

    /// Stops the worker and returns every port it still held (for the control plane to release).
    public func stop() -> [PacketPort] {
        let notTaken = loop?.stop() ?? []
        loop = nil
        let left = table.removeAll() + notTaken
        groups = PortGroups(capacity: config.maxPorts)
        livePorts.store(0, ordering: .relaxed)
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
                                       maxReceiveSegments: 1, maxInlineData: 0, readDepth: 0))  // SENDs only: no RDMA READ either way
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
        loop?.adopt(p)
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
    public func requestDrop(_ p: PacketPort) { loop?.requestDrop(p) }

    // MARK: the engine

    public func arm() {
        costs.count(.completionArms)
        do { try cq!.requestNotification() } catch { logger.error("network \(name): \(error)") }
    }

    /// fds: 0 the completion channel (1, the TAP, is read by every pass).
    public func woke(isReady: (Int) -> Bool) {
        guard isReady(0) else { return }
        do { costs.count(.channelReads, UInt64(try cq!.takeChannelEvents())) } catch { logger.error("network \(name): \(error)") }
    }

    public func finish() {}

    /// One pass: CQ, TAP, then batched posts and credit messages. Returns the events handled.
    @inline(__always)
    public func pollOnce(beforeSleep forceCredits: Bool) -> Int {
        let n: Int
        do { n = try cq!.poll(into: completions) } catch {
            logger.error("network \(name): \(error)")
            return 0
        }
        // The clock (a system call where it cannot be read in user space) when there is
        // work, before a sleep, and every 64th idle pass (credit delays, holds, aging).
        passes &+= 1
        if n > 0 || forceCredits || tap != nil || passes & 63 == 0 { lastNow = clock() }
        let now = lastNow
        if n == 0 { costs.count(.emptyPolls) }
        for i in 0..<n {
            let c = completions[i]
            guard let p = table.item(for: c.wrId) else { continue }
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
        return work
    }

    /// About once a second: every port probes a silent idle peer or is dropped when its peer
    /// left posted sends unacknowledged for the peer timeout.
    public func tick(now: UInt64) {
        totals.setUnlearned(tableFull: switching.unlearnedTableFull, portLimit: switching.unlearnedPortLimit)
        var dropped = false
        for (_, p) in table.occupied {
            let probes = p.counters.livenessProbes
            if p.checkLiveness(now: now) { dropped = true }
            if p.counters.livenessProbes != probes { totals.probed() }
        }
        if dropped { retireDraining() }
    }

    public func take(adopted new: [PacketPort], dropped drops: [PacketPort]) {
        let now = clock()
        for p in new {
            guard let (slot, generation) = table.insert(p) else {
                p.drop("network \(name) has no free port slot")
                retire(p)
                continue
            }
            p.tableIndex = slot
            p.generation = generation
            let (group, isNew) = groups.join(slot: slot, key: p.portKey)
            if isNew {
                switching.addPort(group)
                if let n = p.portKey?.name { switching.setAllowList(config.ports.first { $0.name == n }?.allowedMACs, port: group) }
            }
            p.liveness = PeerLiveness(keepaliveNanoseconds: keepaliveNanoseconds, timeoutNanoseconds: peerTimeoutNanoseconds,
                                      now: monotonicNanoseconds())
            for i in 0..<p.receiveCount { p.repost(i, returnsCredit: false, now: now) }
            do { try p.queuePair.post(p.receiveBatch, costs: costs) } catch { p.drop("posting its receive buffers failed: \(error)") }
            livePorts.add(1, ordering: .relaxed)
            let member = p.portKey.map { " (\($0), queue pair \(groups.members(of: group).count) of its NIC)" } ?? ""
            logger.info("\(p.peer) joined network \(name) as port \(group)\(member) (connection \(slot), queue \(p.queueIndex), \(p.credits) initial credits)")
            if p.isDraining { retireDraining() }
        }
        for p in drops where table.holds(p, at: p.tableIndex) {
            p.drop("disconnected")
        }
        retireDraining()
    }

    /// Retires every draining port: out of the table and the switch, to the control plane.
    /// A port whose buffers other ports' SENDs still read, or whose SENDs still read other
    /// ports' buffers, waits: its queue pair goes to error (its SENDs flush) and it is retired
    /// when the last forward finishes, or after `drainTimeoutNanoseconds` regardless.
    func retireDraining() {
        retirePending = false
        let now = clock()
        for (_, p) in table.occupied where p.dropReason != nil && !p.held.isEmpty {
            dropHeld(for: p, now: now)
        }
        for (i, p) in table.occupied {
            guard let reason = p.dropReason else { continue }
            if p.forwardsInFlight > 0 || p.outstandingForwards > 0 {
                if p.drainDeadline == 0 {
                    try? p.queuePair.moveToError()
                    p.drainDeadline = now &+ Self.drainTimeoutNanoseconds
                }
                if now < p.drainDeadline {
                    retirePending = true
                    continue
                }
                logger.warning("port \(p.peer) (queue \(p.queueIndex)) of network \(name) retired with \(p.forwardsInFlight) forwarding SEND(s) and \(p.outstandingForwards) SEND(s) from its buffers unfinished after \(Self.drainTimeoutNanoseconds / 1_000_000_000) s")
                for s in 0..<p.sendSlots where p.sendRefs[s] != PacketPort.noRef {
                    released(p.sendRefs[s], now: now)
                    p.sendRefs[s] = PacketPort.noRef
                }
                p.forwardsInFlight = 0
            }
            table.remove(at: i)
            if let (g, empty) = groups.leave(slot: i), empty { switching.removePort(g) }
            livePorts.subtract(1, ordering: .relaxed)
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
