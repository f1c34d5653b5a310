import Logging
import Synchronization
@testable import VireoInitiator
import VireoAuth
import VireoFabric
import VireoPacketTarget
import VireoSys
import VireoTestSupport
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// A packet network and the fabric to it, with no RDMA device: NICs connect
/// through `connector(for:)` to ports of a real `PacketNetwork` (its switch,
/// credits and ports) over the fake verbs layer. A pump thread carries each
/// side's SENDs, immediates included, into the other side's posted receives and
/// delivers the completions to both engines, then runs the network's flush (its
/// batched posts and credit messages), as the network's worker would.
final class FakePacketFabric: @unchecked Sendable {
    // SAFETY: `pairs` and the network's engine are touched only under `lock` (pump thread or test).
    struct Pair {
        let initiator: FakeLink
        let target: FakeLink
        let port: PacketPort
        /// The initiator's PD: where the target's RDMA WRITEs (the handshake result) land.
        let initiatorMemory: FakeRegistrar
    }

    let network: PacketNetwork
    private let lock = Locked<[Pair]>([])
    private let targetMemory = FakeRegistrar(firstKey: 0x80_0000)
    /// Times a SEND found no receive posted on the other side (receiver-not-ready: it waits
    /// and is retried, as with an RNR retry count of 7).
    let receiverNotReady = Atomic<Int>(0)
    let refusing = Atomic<Bool>(false)
    /// The receive buffers each connect request announced, in connect order.
    private let announcements = Locked<[Int]>([])
    var announced: [Int] { announcements.withLock { $0 } }
    let connects = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: OSThread?

    /// The target's handshake policy and the network's rule (default: any host).
    let policy: AccessPolicy
    let access: AccessPolicy.Endpoint

    init(config: NetworkConfig = NetworkConfig(name: "lan0"),
         policy: AccessPolicy = AccessPolicy(targetName: "fake-target", targetKey: nil, hosts: [:]),
         access: AccessPolicy.Endpoint = AccessPolicy.Endpoint(allowAnyHost: true)) throws {
        self.policy = policy
        self.access = access
        var logger = Logger(label: "fake.network")
        logger.logLevel = .warning
        network = try PacketNetwork(config: config, logger: logger, retire: { _ in })
        thread = try OSThread(name: "fake-net-fabric") { [self] in pump() }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
        lock.withLock { $0.removeAll() }
    }

    /// A connector for one NIC (its links share one registrar, as one PD).
    func connector(for config: NicConfig, credentials: InitiatorCredentials = InitiatorCredentials(hostName: "fake-host"))
        -> Connector {
        Connector(fabric: self, real: PacketConnector(config: config, credentials: .fixed(credentials)), memory: FakeRegistrar(firstKey: 0x1000))
    }

    struct Connector: EndpointConnector {
        typealias Grant = PacketGeometry
        let fabric: FakePacketFabric
        let real: PacketConnector
        let memory: FakeRegistrar
        var target: FabricAddress { real.target }
        var endpointDescription: String { real.endpointDescription }
        var queuePairConfig: QueuePairConfig { real.queuePairConfig }
        var credentials: CredentialSource { real.credentials }
        func request(queue: Int, initialCredits: Int) -> ConnectRequest { real.request(queue: queue, initialCredits: initialCredits) }
        func connect(queue: Int, cq: (any CompletionSource)?, pd: (any MemoryRegistrar)?, initialCredits: Int, timeoutMilliseconds: Int32)
            throws(InitiatorError) -> (any FabricLink, PacketGeometry) {
            let req = request(queue: queue, initialCredits: initialCredits)
            let (link, geometry, accept) = try fabric.attach(req, shape: queuePairConfig, memory: memory, cq: cq,
                                                             description: targetDescription)
            // The pump carries the hello and the result, as over rxe.
            try authenticate(link, queue: queue, request: (try? req.encoded()) ?? [], accept: accept,
                             timeoutMilliseconds: timeoutMilliseconds)
            return (link, geometry)
        }
    }

    private func attach(_ req: ConnectRequest, shape: QueuePairConfig, memory: FakeRegistrar, cq: (any CompletionSource)?,
                        description: String) throws(InitiatorError) -> (any FabricLink, PacketGeometry, [UInt8]) {
        let queue = Int(req.queueIndex)
        if refusing.load(ordering: .acquiring) { throw .connect(target: description, queue: queue, .noListener(description)) }
        announcements.withLock { $0.append(Int(req.queueDepth)) }
        let config = network.config
        let geometry = PacketGeometry(mtu: UInt32(config.mtu), receiveBuffers: UInt16(config.receiveBuffers),
                                      flags: req.port != nil ? PacketGeometry.flagPortJoined : 0)
        let sendSlots = max(Int(req.queueDepth), config.receiveBuffers, 16)
        let accept = TargetHandshake.accept(geometry: geometry.encoded(), policy: policy)
        let handshake = TargetHandshake(policy: policy, endpoint: access, endpointDescription: "network \(network.name)",
                                        request: (try? req.encoded()) ?? [], accept: accept,
                                        claimedHostID: req.port == nil ? req.hostID : nil)
        do {
            let initiator = try FakeLink(sendDepth: shape.sendDepth, receiveDepth: shape.receiveDepth, registrar: memory,
                                         completions: cq as? FakeCompletionQueue, peerAddress: "fake-target:4420")
            let target = try FakeLink(sendDepth: sendSlots + 8, receiveDepth: config.receiveBuffers + PacketPort.creditMargin,
                                      registrar: targetMemory, peerAddress: "fake-nic-\(connects.load(ordering: .relaxed)):\(queue)")
            let port = try PacketPort(connection: target, request: req, geometry: geometry, sendSlots: sendSlots,
                                      handshake: handshake, handshakeDeadline: monotonicNanoseconds() &+ 5_000_000_000)
            lock.withLock { pairs in
                network.take(adopted: [port], dropped: [])
                pairs.append(Pair(initiator: initiator, target: target, port: port, initiatorMemory: memory))
            }
            connects.add(1, ordering: .relaxed)
            return (initiator, geometry, accept)
        } catch {
            throw .connect(target: description, queue: queue, .invalidArgument(call: "fake connect", "\(error)"))
        }
    }

    /// Cuts every connection (the target went away): what was posted flushes and the events fire.
    func cutAll() {
        lock.withLock { pairs in
            for p in pairs {
                p.initiator.cut()
                for c in p.target.queue.flushAll() { network.completed(c, port: p.port, now: monotonicNanoseconds()) }
            }
            pairs.removeAll()
        }
    }

    private func pump() {
        while !stopping.load(ordering: .acquiring) {
            let moved = lock.withLock { pairs in
                let now = monotonicNanoseconds()
                let n = pairs.reduce(0) { $0 + step($1, now: now) }
                network.flush(now: now, force: n == 0)
                return n
            }
            if moved == 0 { usleep(200) }
        }
    }

    private func step(_ p: Pair, now: UInt64) -> Int {
        let toTarget = p.initiator.queue.runAllSends(receiver: p.target.queue) { o in
            if let c = o.completion { p.initiator.completionQueue.push(c) }
            guard o.completion?.isSuccess ?? true, o.request.consumesReceive,
                  let rc = p.target.queue.deliver(o.payload, immediate: o.request.immediate) else { return }
            network.completed(rc, port: p.port, now: now)
        }
        let toInitiator = p.target.queue.runAllSends(peer: p.initiatorMemory, receiver: p.initiator.queue) { o in
            if o.completion?.isSuccess ?? true, o.request.consumesReceive,
               let rc = p.initiator.queue.deliver(o.payload, immediate: o.request.immediate) {
                p.initiator.completionQueue.push(rc)
            }
            if let c = o.completion { network.completed(c, port: p.port, now: now) }
        }
        for stalled in [toTarget.receiverNotReady, toInitiator.receiverNotReady] where stalled {
            receiverNotReady.add(1, ordering: .relaxed)
        }
        return toTarget.ran + toInitiator.ran
    }

    /// Every port may send its NIC at least one frame (its NIC announced or granted buffers).
    var everyPortHasCredit: Bool { lock.withLock { pairs in pairs.allSatisfy { $0.port.availableCredits > 0 } } }

    /// Nothing posted waits to be carried either way (what a test waits for before it
    /// relies on credits having reached the other side).
    var isIdle: Bool {
        lock.withLock { pairs in pairs.allSatisfy { $0.initiator.queue.pendingSends == 0 && $0.target.queue.pendingSends == 0 } }
    }
}
