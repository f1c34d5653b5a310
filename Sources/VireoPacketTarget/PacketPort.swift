import VireoAuth
import VireoFabric
import VireoSys
import VireoTargetCore
import VireoWire

/// One port of a network: an initiator queue pair connected over RDMA, with
/// its buffers allocated and registered once at accept.
///
/// - `receiveCount` receive buffers of max-frame bytes: `advertised` of them
///   are the initiator's credits, the rest (`creditMargin`) absorb its
///   credit-only messages, which need no credit.
/// - `sendSlots` send slots: a frame from another port is SENT straight from
///   that port's receive buffer (no copy: every port of a device shares its PD),
///   which is reposted when the last SEND reading it completes (`forwardRefs`);
///   a frame from the TAP uplink, or from a port on another RDMA device, is
///   copied into the slot's own buffer of max-frame bytes. The slot is free
///   again when the SEND completes.
/// - `credits`: frames the target may still send (the initiator's free
///   receive buffers as far as the target knows); `pendingReturn`: buffers the
///   target reposted but has not yet told the initiator about.
/// - `held`: unicast frames for this port that found it without credit, oldest
///   first. Each stays in its ingress port's receive buffer, which is not
///   reposted (so its sender gets no credit back) until the frame is sent on
///   here: a congested port pushes back on its senders instead of losing frames.
///
/// Built by the control plane, then owned by the network's worker thread.
/// Released by the control plane after the worker retires it: the connection
/// (QP) first, then the registered buffers.
public final class PacketPort: @unchecked Sendable {
    // SAFETY: after hand-off only the network's worker touches the data path;
    // `release` runs on the control thread after the worker retired the port.
    /// Extra receive buffers for credit-only messages.
    public static let creditMargin = 16
    /// Send-queue entries kept for credit-only messages.
    static let creditSendSlots = 8

    /// The connection: a device's `Connection`, or a test's fake (nil once released).
    private var link: (any FabricLink)?
    /// Where this port posts (the link's work queue).
    let queuePair: any WorkQueue
    public let peer: String
    public let queueIndex: UInt16
    /// The switch port this connection belongs to (nil: a port of its own).
    public let portKey: PortKey?
    let maxFrame: Int
    /// Bytes per receive buffer: a frame, or the handshake's hello if larger (tiny MTUs).
    let receiveStride: Int
    let advertised: Int
    let receiveCount: Int
    let sendSlots: Int
    let sendQueueDepth: Int
    /// Device CQ entries this port may need (receives + sends).
    var completionBudget: Int { receiveCount + sendQueueDepth }

    private var receives: RegisteredBuffer?
    private var sends: RegisteredBuffer?
    /// Base addresses (valid while the buffers are alive, i.e. while the worker owns the port).
    let receiveBase: UnsafeMutableRawPointer
    let sendBase: UnsafeMutableRawPointer
    let receiveRegion: MemoryRegion
    let sendRegion: MemoryRegion
    var freeSends: FixedRing<Int>
    var sendQueueFree: Int
    let sendBatch: SendBatch
    let receiveBatch: RecvBatch

    /// Frames the target may still send to this port.
    var credits: Int
    /// Frames waiting for this port's credit, oldest first, each with when it was held (monotonic ns).
    var held: FixedRing<(frame: HeldFrame, since: UInt64)>
    /// Most frames held for one port; past it, frames drop (`backlog`).
    static let heldCapacity = 256
    /// On the network's list of ports with held frames.
    var isWaiting = false
    /// Other ports' SENDs in flight reading each receive buffer (zero-copy forwards).
    let forwardRefs: FixedArray<UInt32>
    /// Their sum: the port is not retired (its buffers released) while any is in flight.
    var outstandingForwards = 0
    /// What each send slot's SEND reads: a `HeldFrame` in another port's receive buffer, or
    /// `noRef` (a frame copied into the slot's own buffer, or no SEND).
    let sendRefs: FixedArray<UInt64>
    /// Send slots whose SEND reads another port's buffer (`sendRefs` not `noRef`).
    var forwardsInFlight = 0
    static let noRef = UInt64.max
    /// The protection domain's identity: a frame is forwarded without a copy only between
    /// ports of one PD (an lkey means nothing on another device).
    let registrarID: ObjectIdentifier
    /// Draining: when the port is retired even if forwards are still in flight (monotonic ns; 0: not set).
    var drainDeadline: UInt64 = 0
    /// `credits`, for tests and the stats (worker thread, or racy).
    package var availableCredits: Int { credits }
    /// Receive buffers reposted and not yet announced to the peer.
    var pendingReturn = 0
    /// When the oldest unannounced repost happened (monotonic ns).
    var pendingSince: UInt64 = 0
    /// Queued in the worker's list of ports with batched work.
    var isDirty = false
    /// The hello that must come first (docs/wire-protocol.md, "Handshake").
    var handshake: ConnectionHandshake
    /// Whether the peer still answers (the network's liveness tick, `checkLiveness`).
    var liveness = PeerLiveness(keepaliveNanoseconds: .max, timeoutNanoseconds: .max, now: 0)

    public let counters = PortCounters()

    // Set by the worker at install.
    var tableIndex = 0
    var generation: UInt16 = 0
    package private(set) var dropReason: String?
    var isDraining: Bool { dropReason != nil }

    /// Upper bound on credits a peer can accumulate (it cannot have more buffers than this).
    static let maxCredits = 1 << 20

    /// Allocates and registers the port's buffers for `connection`. `handshake`: the hello this
    /// connection must start with, by `handshakeDeadline` (monotonic ns); nil only in tests of the
    /// switch behind it.
    public init(connection: any FabricLink, request: ConnectRequest, geometry: PacketGeometry, sendSlots: Int,
                handshake: TargetHandshake? = nil, handshakeDeadline: UInt64 = .max) throws(FabricError) {
        link = connection
        queuePair = connection.workQueue
        peer = connection.peerAddress
        queueIndex = request.queueIndex
        portKey = request.port
        maxFrame = Int(geometry.maxFrameBytes)
        receiveStride = max(maxFrame, AuthHello.size)
        advertised = Int(geometry.receiveBuffers)
        receiveCount = advertised + Self.creditMargin
        self.sendSlots = sendSlots
        sendQueueDepth = sendSlots + Self.creditSendSlots
        credits = Int(request.queueDepth)
        let (receiveBytes, sendBytes) = Self.bufferBytes(geometry, sendSlots: sendSlots)
        let r = try RegisteredBuffer(pd: connection.registrar, count: receiveBytes, access: [.localWrite])
        let s = try RegisteredBuffer(pd: connection.registrar, count: sendBytes, access: [.localWrite])
        receives = r
        sends = s
        receiveRegion = r.region
        sendRegion = s.region
        receiveBase = r.bytes.baseAddress!
        sendBase = s.bytes.baseAddress!
        forwardRefs = FixedArray(repeating: 0, count: receiveCount)
        sendRefs = FixedArray(repeating: Self.noRef, count: max(sendSlots, 1))
        registrarID = ObjectIdentifier(connection.registrar)
        held = FixedRing(capacity: Self.heldCapacity)
        freeSends = FixedRing(capacity: max(sendSlots, 1))
        for i in 0..<sendSlots { freeSends.push(i) }
        sendQueueFree = sendQueueDepth
        sendBatch = SendBatch(capacity: sendQueueDepth)
        receiveBatch = RecvBatch(capacity: receiveCount)
        self.handshake = try ConnectionHandshake(handshake: handshake, deadline: handshakeDeadline,
                                                 registrar: connection.registrar)
    }

    /// The receive and send buffer bytes a port with this geometry and `sendSlots` registers.
    static func bufferBytes(_ g: PacketGeometry, sendSlots: Int) -> (receive: Int, send: Int) {
        let frame = Int(g.maxFrameBytes)
        return ((Int(g.receiveBuffers) + creditMargin) * max(frame, AuthHello.size), max(sendSlots, 1) * frame)
    }

    /// The bytes such a port registers in all.
    public static func registeredBytes(_ g: PacketGeometry, sendSlots: Int) -> Int {
        let b = bufferBytes(g, sendSlots: sendSlots)
        return b.receive + b.send
    }

    /// Marks the port for removal; the worker retires it at the end of its pass.
    func drop(_ reason: String) {
        if dropReason == nil { dropReason = reason }
    }

    /// The network's liveness tick (about once a second, never per frame): probes a peer that
    /// has been idle and silent for the keepalive interval with a zero-length RDMA WRITE, and
    /// drops one that has left posted sends unacknowledged for the peer timeout (it vanished
    /// without a DISCONNECT). Returns true when it dropped the port.
    func checkLiveness(now: UInt64) -> Bool {
        guard !isDraining else { return false }
        if handshake.expired(now: now) {
            drop("handshakeTimeout: no handshake hello by its deadline")
            return true
        }
        switch liveness.check(now: now, waiting: sendQueueFree < sendQueueDepth) {
        case .alive:
            return false
        case .probe:
            guard sendQueueFree > 0 else { return false }
            sendBatch.probe(wrId: workID(WorkID.probe, 0))
            do { try queuePair.post(sendBatch) } catch {
                drop("posting a liveness probe failed: \(error)")
                return true
            }
            sendQueueFree -= 1
            liveness.probePosted()
            counters.probed()
            return false
        case .gone(let silent):
            drop("peerUnreachable: " + liveness.vanishedReason(silentNanoseconds: silent, work: "posted sends"))
            return true
        }
    }

    /// Releases in order: the connection (disconnect, QP), then the registered buffers.
    public func release(disconnectTimeoutMilliseconds: Int32 = 500) {
        link?.disconnect(timeoutMilliseconds: disconnectTimeoutMilliseconds)
        link = nil
        receives = nil
        sends = nil
        handshake.release()
    }

    @inline(__always)
    func workID(_ kind: UInt64, _ index: Int) -> UInt64 {
        WorkID.make(queue: tableIndex, generation: generation, kind: kind, index: index)
    }

    /// Receive buffer `i`.
    @inline(__always)
    func receiveBuffer(_ i: Int) -> UnsafeMutableRawPointer { receiveBase + i * receiveStride }

    /// Queues a repost of receive buffer `i`; `returnsCredit` when it held a frame (not a credit message).
    @inline(__always)
    func repost(_ i: Int, returnsCredit: Bool, now: UInt64) {
        receiveBatch.receive(wrId: workID(WorkID.packetReceive, i),
                             local: receiveRegion.segment(offset: i * receiveStride, length: receiveStride))
        if returnsCredit {
            if pendingReturn == 0 { pendingSince = now }
            pendingReturn += 1
        }
    }

    /// Credits to piggyback on the next message (all pending, up to 65535).
    @inline(__always)
    func takeReturnedCredits() -> UInt16 {
        let n = min(pendingReturn, Int(UInt16.max))
        pendingReturn -= n
        return UInt16(n)
    }

    /// Adds credits granted by the peer (saturating: a lying peer only hurts itself).
    @inline(__always)
    func grant(_ n: UInt16) {
        credits = min(credits + Int(n), Self.maxCredits)
    }
}

/// A frame held in its ingress port's receive buffer, packed in 64 bits: the ingress
/// connection's table slot and generation (a port that left no longer matches), the
/// receive buffer and the frame's length.
struct HeldFrame {
    let slot: Int
    let generation: UInt16
    let index: Int
    let byteCount: Int

    @inline(__always)
    var packed: UInt64 {
        // slot < 1024 (max_ports ≤ 1023), index < 2^20, byteCount < 2^18 (a frame of any MTU).
        UInt64(slot & 0x3ff) << 54 | UInt64(generation) << 38 | UInt64(index & 0xfffff) << 18 | UInt64(byteCount & 0x3ffff)
    }

    @inline(__always)
    init(slot: Int, generation: UInt16, index: Int, byteCount: Int) {
        self.slot = slot
        self.generation = generation
        self.index = index
        self.byteCount = byteCount
    }

    @inline(__always)
    init(_ v: UInt64) {
        slot = Int(v >> 54)
        generation = UInt16(truncatingIfNeeded: v >> 38)
        index = Int((v >> 18) & 0xfffff)
        byteCount = Int(v & 0x3ffff)
    }
}
