import Logging
import Synchronization
@testable import VireoInitiator
import VireoAuth
import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoTargetCore
import VireoTestSupport
import VireoUring
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// A block target and the fabric to it, with no RDMA device: the initiator's
/// queues connect through this connector to real `TargetQueue`s on a memory
/// export, over the fake verbs layer. A pump thread carries every SEND to the
/// other side's posted receives, runs the target's RDMA READs and WRITEs
/// against the initiator's registered (guest) memory, and delivers completions
/// to both engines, so the initiator's request engine (`RemoteQueue`) runs on
/// its vhost-user worker exactly as over rxe.
///
/// The test can hold the pump (commands stay in flight), cut every connection
/// (they flush and the supervisor sees them go), and refuse new ones.
final class FakeBlockFabric: EndpointConnector, @unchecked Sendable {
    // SAFETY: `pairs` and the target engines are touched only under `lock` (pump thread or test).
    typealias Grant = BlockGeometry

    struct Pair {
        let initiator: FakeLink
        let target: FakeLink
        let queue: TargetQueue
    }

    let export: Export
    let config: DiskConfig
    /// Who the initiator says it is, and what it requires of the target.
    let credentials: CredentialSource
    /// The target's handshake policy and the export's rule (default: any host).
    let policy: AccessPolicy
    let access: AccessPolicy.Endpoint
    /// One registrar for everything the initiator registers (its buffers and guest memory), as one PD.
    let initiatorMemory = FakeRegistrar(firstKey: 0x1000)
    private let targetMemory = FakeRegistrar(firstKey: 0x80_0000)
    private let lock = Locked<[Pair]>([])
    private let ring: IOUring
    private let counters = TargetCounters()
    /// Pump paused: nothing moves (commands stay posted).
    let held = Atomic<Bool>(false)
    /// New connections refused (the target is "down").
    let refusing = Atomic<Bool>(false)
    let connects = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: OSThread?

    /// Every capsule the target received, in order (what a hostile target would learn).
    let capsulesSeen = Locked<[[UInt8]]>([])
    /// Responses reach the initiator as plain SENDs: the target invalidates nothing.
    let stripInvalidation = Atomic<Bool>(false)
    /// Responses invalidate the command's last window instead of its first (a hostile target).
    let invalidateLastWindow = Atomic<Bool>(false)

    /// Times a capsule found no receive posted at the target (receiver-not-ready: it
    /// waits and is retried, as with an RNR retry count of 7; an initiator within its
    /// credits never causes one).
    let receiverNotReady = Atomic<Int>(0)

    /// `exportQueueDepth`: the most commands the target grants per queue (the initiator's credits).
    init(config: DiskConfig, exportBytes: UInt64 = 16 << 20, exportQueueDepth: Int = 128,
         credentials: InitiatorCredentials = InitiatorCredentials(hostName: "fake-host"),
         policy: AccessPolicy = AccessPolicy(targetName: "fake-target", targetKey: nil, hosts: [:]),
         access: AccessPolicy.Endpoint = AccessPolicy.Endpoint(allowAnyHost: true)) throws {
        self.config = config
        self.credentials = .fixed(credentials)
        self.policy = policy
        self.access = access
        var e = ExportConfig(name: config.export, backing: .memory, size: exportBytes)
        e.queueDepth = exportQueueDepth
        export = try Export(config: e, logger: Logger(label: "fake.target"))
        ring = try IOUring(entries: 8)
        thread = try OSThread(name: "fake-fabric") { [self] in pump() }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
        lock.withLock { $0.removeAll() }
    }

    // MARK: EndpointConnector

    var target: FabricAddress { config.target }
    var endpointDescription: String { "export \(config.export)" }
    var queuePairConfig: QueuePairConfig { TargetConnector.queuePairConfig(slots: config.queueDepth) }
    func request(queue: Int, initialCredits: Int) -> ConnectRequest {
        TargetConnector(config: config, credentials: credentials).request(queue: queue, initialCredits: initialCredits)
    }

    func connect(queue: Int, cq: (any CompletionSource)?, pd: (any MemoryRegistrar)?, initialCredits: Int, timeoutMilliseconds: Int32)
        throws(InitiatorError) -> (any FabricLink, BlockGeometry) {
        if refusing.load(ordering: .acquiring) {
            throw .connect(target: targetDescription, queue: queue, .noListener(targetDescription))
        }
        let req = request(queue: queue, initialCredits: initialCredits)
        guard case .granted(let g) = export.grant(req), let reqBytes = try? req.encoded() else {
            throw .connect(target: targetDescription, queue: queue, .invalidArgument(call: "grant", "refused"))
        }
        let accept = TargetHandshake.accept(geometry: g.encoded(), policy: policy)
        let handshake = TargetHandshake(policy: policy, endpoint: access, endpointDescription: "export \(config.export)",
                                        request: reqBytes, accept: accept, claimedHostID: req.hostID)
        let initiator: FakeLink
        do {
            let qp = queuePairConfig
            initiator = try FakeLink(sendDepth: qp.sendDepth, receiveDepth: qp.receiveDepth, registrar: initiatorMemory,
                                         completions: cq as? FakeCompletionQueue, peerAddress: "fake-target:4420")
            let sendDepth = Int(g.queueDepth) * (Int(g.maxSegments) + 1)
            let target = try FakeLink(sendDepth: sendDepth, receiveDepth: Int(g.queueDepth), registrar: targetMemory,
                                      peerAddress: "fake-initiator:\(queue)")
            let q = try TargetQueue(connection: target, export: export, geometry: g, sendQueueDepth: sendDepth,
                                    queueIndex: UInt16(queue), handshake: handshake,
                                    handshakeDeadline: monotonicNanoseconds() &+ 5_000_000_000)
            lock.withLock { pairs in
                q.install(index: pairs.count, generation: 1, ring: ring, counters: counters, costs: DataPathCosts(),
                          logger: Logger(label: "fake.target"),
                          liveness: PeerLiveness(keepaliveNanoseconds: .max, timeoutNanoseconds: .max, now: 0))
                pairs.append(Pair(initiator: initiator, target: target, queue: q))
            }
        } catch {
            throw .connect(target: targetDescription, queue: queue, .invalidArgument(call: "fake connect", "\(error)"))
        }
        // The pump carries the hello and the result, as over rxe.
        try authenticate(initiator, queue: queue, request: reqBytes, accept: accept, timeoutMilliseconds: timeoutMilliseconds)
        connects.add(1, ordering: .relaxed)
        return (initiator, g)
    }

    /// The target sides' authenticated hosts, in connect order (nil: not authenticated).
    var authenticatedHosts: [String?] { lock.withLock { $0.map(\.queue.host) } }

    /// The (address, length, key) of each segment of a capsule's bytes.
    static func segments(_ capsule: [UInt8]) -> [(address: UInt64, length: Int, key: UInt32)] {
        capsule.withUnsafeBytes { b in
            guard b.count >= Wire.commandHeaderSize, let p = b.baseAddress else { return [] }
            let n = min(CommandWriter.segmentCount(p), (b.count - Wire.commandHeaderSize) / Wire.segmentSize)
            return (0..<n).map { i in
                let s = CommandWriter.segment(p, i)
                return (s.address, Int(s.length), s.rkey)
            }
        }
    }

    static func segmentKeys(_ capsule: [UInt8]) -> [UInt32] { segments(capsule).map(\.key) }

    // MARK: the test's controls

    /// Cuts every connection: what was posted flushes, the connection events fire,
    /// and the target side forgets them (as a target that went away).
    func cutAll() {
        lock.withLock { pairs in
            for p in pairs {
                p.initiator.cut()
                _ = p.target.queue.flushAll()
            }
            pairs.removeAll()
        }
    }

    /// Commands the initiator posted that the pump has not carried yet.
    var pendingCommands: Int {
        lock.withLock { pairs in pairs.reduce(0) { $0 + $1.initiator.queue.pendingSendRequests.filter(\.consumesReceive).count } }
    }

    // MARK: the pump

    private func pump() {
        while !stopping.load(ordering: .acquiring) {
            let moved = held.load(ordering: .acquiring) ? 0 : lock.withLock { pairs in
                pairs.reduce(0) { $0 + step($1) }
            }
            if moved == 0 { usleep(200) }
        }
    }

    /// Moves everything one pair has posted, both ways; returns how many work requests ran.
    private func step(_ p: Pair) -> Int {
        // Initiator → target: capsules (SENDs, possibly gathering inline guest pieces).
        let toTarget = p.initiator.queue.runAllSends(peer: targetMemory, receiver: p.target.queue) { o in
            if let c = o.completion { p.initiator.completionQueue.push(c) }
            guard o.completion?.isSuccess ?? true, o.request.operation == .send,
                  let rc = p.target.queue.deliver(o.payload) else { return }
            capsulesSeen.withLock { $0.append(o.payload) }
            p.queue.completedAlone(rc)
        }
        if toTarget.receiverNotReady { receiverNotReady.add(1, ordering: .relaxed) }
        // Target → initiator: RDMA READs/WRITEs of guest memory, responses.
        let toInitiator = p.target.queue.runAllSends(peer: initiatorMemory) { o in
            var invalidating = stripInvalidation.load(ordering: .relaxed) ? nil : o.request.invalidateKey
            if invalidating != nil, invalidateLastWindow.load(ordering: .relaxed),
               let last = capsulesSeen.withLock({ $0.last }), let key = Self.segmentKeys(last).last {
                invalidating = key
            }
            if o.request.consumesReceive, o.completion?.isSuccess ?? true,
               let rc = p.initiator.queue.deliver(o.payload, invalidating: invalidating) {
                p.initiator.completionQueue.push(rc)
            }
            if let c = o.completion { p.queue.completedAlone(c) }
        }
        return toTarget.ran + toInitiator.ran
    }
}
