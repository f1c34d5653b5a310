import VireoUring
import Logging
import VireoAuth
import VireoFabric
import VireoRBD
import VireoSys
import VireoTargetCore
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// One connection (queue) of a block export on the target, with everything it
/// needs allocated once at accept: `depth` bounce buffers of max-I/O bytes,
/// `depth` response buffers and request slots, and `depth` receive buffers of
/// its own unless its worker's shared receive pool serves it (see `ReceivePool`).
/// A memory export registered with the connection's PD needs no bounce buffer:
/// RDMA moves READ and WRITE data straight between it and the initiator.
///
/// On a shared pool, the queue holds at most `depth` receives (a command from
/// slot start to response, or waiting for a slot): an initiator sending more
/// commands than its granted depth would take buffers the worker's other
/// connections need, so it is dropped (`creditExceeded`).
///
/// Posts are batched: what a worker pass produces (RDMA READs, data WRITEs,
/// responses, reposted receives) is appended to the queue's batches and posted
/// by `flushPosts()` once at the end of the pass (`needsFlush`), one
/// `ibv_post_recv` and one `ibv_post_send` for all of it.
///
/// Built by the control plane, then owned by one worker, which feeds it
/// completions; `process(_:)` drives each request slot through
/// `TargetRequestState`. Released by the control plane after the worker
/// retires it: the connection (QP) first, then the registered buffers.
package final class TargetQueue: @unchecked Sendable {
    // SAFETY: after hand-off only the owning worker thread touches the data path.
    /// The connection: a device's `Connection`, or a test's fake (nil once released).
    private var link: (any FabricLink)?
    /// Where this queue posts (the link's work queue, cached for the data path).
    private let workQueue: any WorkQueue
    package let export: Export
    let store: BlockStore
    let limits: CommandLimits
    let geometry: BlockGeometry
    package let depth: Int
    let maxIO: Int
    /// Bytes a receive needs for this grant's largest command (and the hello).
    let receiveSize: Int
    let sendQueueDepth: Int
    /// Where this connection's commands arrive: its own buffers, or its worker's shared pool.
    private let receives: ReceivePool
    /// Receive buffers of a shared pool this queue holds (≤ `depth` from an initiator within its credit).
    private var receivesHeld = 0
    /// Whether commands arrive in the worker's shared receive pool.
    package var usesSharedReceives: Bool { receives.isShared }
    /// Device completion-queue entries this connection may need: every send WR flushed on error,
    /// and its own receives (a shared pool's are budgeted once, by the worker).
    package var completionBudget: Int { (receives.isShared ? 0 : depth) + sendQueueDepth }
    let peer: String
    /// Its queue pair's number (how a shared receive's completion names it).
    package let queuePairNumber: UInt32
    /// The initiator's queue index (from its connect request).
    let queueIndex: UInt16
    /// "address export NAME queue N": how logs name this connection's peer.
    let peerName: String
    /// Bad commands logged so far (the first `loggedBadCommands` are; all are counted).
    private var badCommandsLogged = 0
    static let loggedBadCommands = 16
    private var logger: Logger?

    private var bounce: RegisteredBuffer?
    /// A memory export's bytes, registered with this connection's PD (nil: bounce buffers).
    private var exportRegion: MemoryRegion?
    /// Batched work requests are waiting for `flushPosts()`.
    package var needsFlush: Bool { !sendBatch.isEmpty || (!receives.isShared && receives.needsFlush) }
    /// Set by the worker while this queue is on its list of queues to flush.
    var isOnFlushList = false
    /// Where this connection counts its posts (its worker's costs, from `install`).
    private var costs = TargetQueue.uninstalledCosts
    private static let uninstalledCosts = DataPathCosts()
    private var responses: RegisteredBuffer?
    private let requests: FixedArray<TargetRequest>
    private var freeSlots: FixedRing<Int>
    /// Receives that arrived while every slot was busy (receive index << 20 | byte count).
    private var pendingReceives: FixedRing<Int>
    /// Slots waiting for send-queue room, in arrival order.
    private var waiters: FixedRing<Int>
    /// Slots zeroing a memory export's range chunk by chunk, oldest first.
    private var zeroingSlots: FixedRing<Int>
    /// Set by the worker while this queue is on its list of queues with chunked work.
    var isOnZeroingList = false
    /// Slots whose RBD operation the cluster failed, waiting for the worker's tick to start it again.
    private var retryingSlots: FixedRing<Int>
    /// RBD errors logged in the current 10 s on this connection (the first `loggedClusterErrors`
    /// of each 10 s are; all are counted), and when those 10 s began.
    private var clusterErrorsLogged = 0
    private var clusterErrorWindowStart: UInt64 = 0
    static let loggedClusterErrors = 8
    /// An RBD export's io_timeout (ns): how long a command may wait for the cluster in all.
    private let clusterTimeoutNanoseconds: UInt64
    /// Most bytes a memory export zeroes in one go on the worker; larger ranges go in chunks of this.
    static let zeroChunkBytes = 1 << 20
    private var sendQueueFree: Int
    /// Whether the peer still answers (checked on the worker's tick, see `checkLiveness`).
    private var liveness = PeerLiveness(keepaliveNanoseconds: .max, timeoutNanoseconds: .max, now: 0)
    private let sendBatch: SendBatch
    /// The hello that must come first (docs/wire-protocol.md, "Handshake").
    private var handshake: ConnectionHandshake
    /// The authenticated host (nil until the hello is accepted, or without a handshake).
    package var host: String? { handshake.host }

    // Set by the worker at install.
    var tableIndex = 0
    var generation: UInt16 = 0
    private var ring: IOUring?
    /// This connection's bounce buffers as a fixed buffer of the worker's ring (its table
    /// slot), for file and device exports; nil: plain reads and writes.
    package private(set) var fixedBufferIndex: Int?
    private var counters = TargetCounters()
    /// io_uring operations in flight: the bounce buffers stay alive until this is 0.
    private(set) var storageInFlight = 0
    /// Set when the connection must go; the worker retires it once no storage I/O is in flight.
    package private(set) var dropReason: String?
    /// Why, when it was an error (nil: an orderly disconnect or none yet).
    package private(set) var dropFault: ConnectionFault?
    var isDraining: Bool { dropReason != nil }

    /// Allocates and registers everything for `geometry` with the connection's registrar (its PD).
    /// `handshake`: the hello this connection must start with, by `handshakeDeadline` (monotonic
    /// nanoseconds); nil only for tests of the engine behind the handshake. `sharedReceives`: the
    /// worker's shared pool the connection's queue pair was created on (its buffers must hold
    /// `receiveSize(geometry)` bytes); nil: `depth` receive buffers of its own.
    package init(connection: any FabricLink, export: Export, geometry: BlockGeometry, sendQueueDepth: Int,
                 queueIndex: UInt16 = 0, handshake: TargetHandshake? = nil,
                 handshakeDeadline: UInt64 = .max, sharedReceives: ReceivePool? = nil) throws(FabricError) {
        link = connection
        workQueue = connection.workQueue
        self.export = export
        store = export.store
        self.geometry = geometry
        limits = CommandLimits(geometry: geometry)
        depth = Int(geometry.queueDepth)
        maxIO = Int(geometry.maxIOBytes)
        receiveSize = Self.receiveSize(geometry)
        self.sendQueueDepth = sendQueueDepth
        peer = connection.peerAddress
        queuePairNumber = connection.queuePairNumber
        self.queueIndex = queueIndex
        peerName = "\(connection.peerAddress) export \(export.config.name) queue \(queueIndex)"
        let pd = connection.registrar
        let slotBytes = Self.bounceStride(geometry)
        if let shared = sharedReceives {
            guard shared.isShared, shared.bufferSize >= receiveSize else {
                throw .invalidArgument(call: "shared receives", "buffers of \(shared.bufferSize) bytes; this grant's commands need \(receiveSize)")
            }
            receives = shared
            // The pool's buffers outlive the queue pair, which can write them until it is destroyed.
            connection.holdUntilReleased(shared)
        } else {
            receives = try ReceivePool(registrar: pd, count: depth, bufferSize: receiveSize, poster: connection.workQueue,
                                       shared: false)
        }
        bounce = try RegisteredBuffer(pd: pd, count: depth * slotBytes, access: [.localWrite])
        responses = try RegisteredBuffer(pd: pd, count: depth * Wire.responseSize, access: [.localWrite])
        bounceStride = slotBytes
        requests = FixedArray(repeating: TargetRequest(), count: depth)
        freeSlots = FixedRing(capacity: depth)
        for i in 0..<depth { freeSlots.push(i) }
        pendingReceives = FixedRing(capacity: depth)
        waiters = FixedRing(capacity: depth)
        zeroingSlots = FixedRing(capacity: depth)
        retryingSlots = FixedRing(capacity: depth)
        clusterTimeoutNanoseconds = UInt64(export.config.ioTimeoutSeconds * 1e9)
        sendQueueFree = sendQueueDepth
        // Room for one command's READs or data WRITEs and response, or for a whole pass at
        // queue depth with one segment per command (a data WRITE and a response each).
        sendBatch = SendBatch(capacity: max(Int(geometry.maxSegments) + 1, min(depth * 2, 512)))
        self.handshake = try ConnectionHandshake(handshake: handshake, deadline: handshakeDeadline, registrar: pd)
        // A memory export the RNIC cannot register (a memlock limit) is served through bounce buffers.
        exportRegion = try? export.memoryRegion(for: pd)
    }

    /// Whether READ and WRITE data bypass the bounce buffers (a registered memory export).
    package var isZeroCopy: Bool { exportRegion != nil }

    private let bounceStride: Int

    /// Bytes per receive buffer: a command of the grant, and at least the hello (the first
    /// SEND), however small the grant.
    package static func receiveSize(_ g: BlockGeometry) -> Int {
        max(Wire.commandSize(segments: Int(g.maxSegments), inline: Int(g.maxInlineBytes)), AuthHello.size)
    }

    /// Bytes a receive needs for the largest command `export` can grant (and the hello): what a
    /// shared receive buffer must hold to serve any of its connections.
    package static func largestReceiveSize(_ export: ExportConfig) -> Int {
        max(Wire.commandSize(segments: export.maxSegments, inline: max(0, min(export.inlineMax, export.maxIO))), AuthHello.size)
    }

    /// Bytes per bounce buffer: max I/O, each starting on a page (O_DIRECT alignment).
    static func bounceStride(_ g: BlockGeometry) -> Int { (Int(g.maxIOBytes) + pageSize - 1) / pageSize * pageSize }

    /// The bytes a queue with this grant registers: bounce buffers, responses, and its own
    /// receives unless a shared pool serves it.
    package static func registeredBytes(_ g: BlockGeometry, sharedReceives: Bool = false) -> Int {
        Int(g.queueDepth) * ((sharedReceives ? 0 : receiveSize(g)) + bounceStride(g) + Wire.responseSize)
    }

    /// Empties this connection's fixed-buffer slot (worker, at retirement: no storage I/O in flight).
    func unregisterFixedBuffer() {
        guard let i = fixedBufferIndex, let ring else { return }
        try? ring.setFixedBuffer(i, nil)
        fixedBufferIndex = nil
    }

    /// Releases in order: the connection (disconnect, QP), then the registered buffers.
    package func release(disconnectTimeoutMilliseconds: Int32 = 500) {
        link?.disconnect(timeoutMilliseconds: disconnectTimeoutMilliseconds)
        link = nil
        if !receives.isShared { receives.release() }
        bounce = nil
        exportRegion = nil
        responses = nil
        handshake.release()
    }

    /// Called by the worker that now owns this queue: records its ids, starts watching the
    /// peer's liveness, and posts every receive of its own.
    package func install(index: Int, generation: UInt16, ring: IOUring, counters: TargetCounters, costs: DataPathCosts,
                         logger: Logger, liveness: PeerLiveness) {
        self.logger = logger
        self.costs = costs
        self.liveness = liveness
        tableIndex = index
        self.generation = generation
        self.ring = ring
        self.counters = counters
        if store.memory == nil, store.image == nil, index < ring.fixedBufferSlots, let b = bounce?.bytes {
            // A ring that refuses is served with plain reads and writes.
            if (try? ring.setFixedBuffer(index, b)) != nil { fixedBufferIndex = index }
        }
        if !receives.isShared { receives.name(queue: index, generation: generation) }
        flushPosts()
    }

    /// A completion of the worker's shared receive queue for this queue's queue pair, which
    /// took pool buffer `buffer`: the command is served, or the buffer goes straight back
    /// (the queue is going, or the receive failed and with it the queue pair).
    @inline(__always)
    package func sharedReceiveCompleted(_ c: Completion, buffer: Int) {
        guard !isDraining, c.isSuccess else {
            receives.giveBack(buffer)
            if !isDraining {
                drop(c.status == .flushed ? "disconnected" : "receive failed: \(c.status)",
                     fault: c.status == .flushed ? nil : (c.status.peerUnreachable ? .peerUnreachable : .receiveFailed))
            }
            return
        }
        liveness.heard()
        sharedReceived(buffer, byteCount: Int(c.byteLength))
    }

    /// Pool buffer `buffer` holds a message of `byteCount` bytes for this queue (a completion,
    /// or a receive the worker held until it adopted this queue).
    package func sharedReceived(_ buffer: Int, byteCount: Int) {
        guard !isDraining else { return receives.giveBack(buffer) }
        receivesHeld += 1
        guard receivesHeld <= depth else {
            receivesHeld -= 1
            receives.giveBack(buffer)
            return drop("more commands in flight than its queue depth \(depth)", fault: .creditExceeded)
        }
        received(buffer, byteCount: byteCount)
    }

    /// Gives back every shared-pool buffer this queue still holds (the worker, at retirement:
    /// no storage operation reads them any more).
    package func returnSharedReceives() {
        guard receives.isShared else { return }
        for slot in 0..<depth where requests[slot].receiveIndex >= 0 {
            giveBackReceive(requests[slot].receiveIndex)
            requests[slot].receiveIndex = -1
        }
        while let pending = pendingReceives.pop() { giveBackReceive(pending >> 20) }
    }

    // MARK: completions

    /// A device completion for this queue (already matched by index and generation).
    @inline(__always)
    package func completed(_ c: Completion) {
        if isDraining { return }
        let kind = WorkID.kind(c.wrId), index = WorkID.index(c.wrId)
        guard c.isSuccess else {
            if c.status == .flushed { return drop("disconnected", fault: nil) }
            let what: String
            var fault: ConnectionFault
            switch kind {
            case WorkID.transfer: (what, fault) = ("RDMA READ of the initiator's buffers", .transferFailed)
            case WorkID.data: (what, fault) = ("RDMA WRITE into the initiator's buffers", .dataWriteFailed)
            case WorkID.response: (what, fault) = ("response SEND", .responseFailed)
            case WorkID.probe: (what, fault) = ("liveness probe (zero-length RDMA WRITE)", .peerUnreachable)
            case WorkID.handshake: (what, fault) = ("handshake result RDMA WRITE into the initiator's mailbox", .handshakeFailed)
            default: (what, fault) = ("receive", .receiveFailed)
            }
            if c.status.peerUnreachable { fault = .peerUnreachable }
            drop("\(what) failed: \(c.status)", fault: fault)
            return
        }
        liveness.heard()
        guard index >= 0 && index < depth else { return drop("completion for unknown slot \(index)", fault: .protocolError) }
        switch kind {
        case WorkID.receive:
            receives.took(index)
            received(index, byteCount: Int(c.byteLength))
        case WorkID.transfer:
            let r = requests.base + index
            sendQueueFree += r.pointee.sendQueueHeld
            r.pointee.sendQueueHeld = 0
            r.pointee.state = .readyToExecute
            process(index)
            serveWaiters()
        case WorkID.response:
            finished(index)
        case WorkID.probe:
            liveness.probeAnswered()
            sendQueueFree += 1
            serveWaiters()
        case WorkID.handshake:
            sendQueueFree += 1
            if let r = handshake.refused {
                return drop("handshake refused (\(r.reason)): \(r.message)", fault: .authenticationRefused)
            }
            serveWaiters()
        default:
            break
        }
    }

    /// One completion handled as a worker pass holding only it would: fed, then what it
    /// produced posted, a shared pool's given-back buffers first (the engine tests drive the
    /// queue this way; a shared receive's completion names its pool buffer).
    package func completedAlone(_ c: Completion) {
        if WorkID.kind(c.wrId) == WorkID.sharedReceive {
            receives.took(WorkID.index(c.wrId))
            sharedReceiveCompleted(c, buffer: WorkID.index(c.wrId))
        } else {
            completed(c)
        }
        if receives.isShared, receives.needsFlush { try? receives.flush(costs: costs) }
        if needsFlush { flushPosts() }
    }

    /// An io_uring completion for slot `index` (result: bytes or -errno).
    @inline(__always)
    func storageCompleted(_ index: Int, result: Int32) {
        storageInFlight -= 1
        if isDraining || index < 0 || index >= depth { return }
        let r = requests.base + index
        guard let cap = r.pointee.capsule else { return }
        if store.image != nil {
            // librbd completes a whole operation: bytes (read, write) or 0, or a negative errno.
            if result < 0, !clusterFailed(index, cap, errno: -result) { return }
            r.pointee.hasData = cap.opcode == .read && r.pointee.status == .ok
            r.pointee.state = .readyToComplete
            return process(index)
        }
        if result < 0 {
            if cap.opcode == .writeZeroes, result == -EOPNOTSUPP || result == -EINVAL || result == -ENOTTY,
               r.pointee.zeroing != .writeZeroes {
                // ZERO_RANGE unsupported (tmpfs, some devices): punch a hole in a file, else write zeroes.
                if r.pointee.zeroing == .zeroRange, case .file = store.kind { r.pointee.zeroing = .punchHole } else {
                    r.pointee.zeroing = .writeZeroes
                }
                r.pointee.progress = 0
                if submitStorage(index) { return }
            } else {
                // A device without discard support answers "unsupported", not an I/O error.
                r.pointee.status = cap.opcode == .discard && (result == -EOPNOTSUPP || result == -ENOTTY) ? .unsupported : .ioError
            }
        } else {
            switch cap.opcode {
            case .read, .write:
                if result == 0 { r.pointee.status = .ioError; break }
                r.pointee.progress += UInt32(result)
                if r.pointee.progress < cap.length, submitStorage(index) { return }
            case .writeZeroes where r.pointee.zeroing == .writeZeroes:
                if result == 0 { r.pointee.status = .ioError; break }
                r.pointee.progress += UInt32(result)
                if r.pointee.progress < cap.length, submitStorage(index) { return }
            default:
                break
            }
        }
        r.pointee.hasData = cap.opcode == .read && r.pointee.status == .ok
        r.pointee.state = .readyToComplete
        process(index)
    }

    /// The worker's liveness tick (about once a second, never per command): probes a peer
    /// that has been silent and idle for the keepalive interval, and drops one that has
    /// left posted work unacknowledged for the peer timeout (it vanished without a
    /// DISCONNECT: crashed, powered off, cut off).
    package func checkLiveness(now: UInt64) {
        guard !isDraining else { return }
        if handshake.expired(now: now) {
            return drop("no handshake hello by its deadline", fault: .handshakeTimeout)
        }
        switch liveness.check(now: now, waiting: sendQueueFree < sendQueueDepth) {
        case .alive:
            return
        case .probe:
            guard sendQueueFree > 0 else { return }
            makeRoom(1)
            sendBatch.probe(wrId: WorkID.make(queue: tableIndex, generation: generation, kind: WorkID.probe, index: 0))
            sendQueueFree -= 1
            guard flushPosts() else { return }
            liveness.probePosted()
            counters.probed()
        case .gone(let silent):
            drop(liveness.vanishedReason(silentNanoseconds: silent, work: "posted work"), fault: .peerUnreachable)
        }
    }

    /// Marks the connection for retirement (the QP is in error or the peer is broken);
    /// `fault` is nil for an orderly disconnect.
    func drop(_ reason: String, fault: ConnectionFault?) {
        guard dropReason == nil else { return }
        dropReason = reason
        dropFault = fault
    }

    /// Counts a refused capsule by its check, and logs the first few per connection with the peer's name.
    private func refused(_ f: CommandCapsule.Failure, byteCount: Int) {
        counters.badCommand(f.check)
        guard badCommandsLogged <= Self.loggedBadCommands, let logger else { return }
        badCommandsLogged += 1
        if badCommandsLogged > Self.loggedBadCommands {
            logger.warning("bad command from \(peerName): more than \(Self.loggedBadCommands); further ones are counted, not logged")
            return
        }
        let tag = f.tag.map { "tag \($0)" } ?? "no tag"
        logger.warning("bad command from \(peerName): \(f.check.name) (\(f.reason)), \(tag), \(byteCount) bytes; answered \(f.status)")
    }

    // MARK: the request state machine

    private func received(_ receiveIndex: Int, byteCount: Int) {
        guard handshake.isServing else { return hello(receiveIndex, byteCount: byteCount) }
        guard let slot = freeSlots.pop() else {
            pendingReceives.push(receiveIndex << 20 | byteCount)
            return
        }
        start(slot, receiveIndex: receiveIndex, byteCount: byteCount)
    }

    /// The connection's first message, which must be the hello; anything after a refused
    /// hello is ignored (the connection goes when the refusal is written).
    private func hello(_ receiveIndex: Int, byteCount: Int) {
        // Every path gives the buffer back: on a shared pool a buffer kept here would be lost
        // to every connection of the worker.
        guard handshake.awaitingHello else { return giveBackReceive(receiveIndex) }
        // SAFETY: the receive buffer is registered and `receiveSize` ≥ byteCount long (the RNIC
        // refuses a longer SEND); nothing reads it after `hello` returns.
        let p = UnsafeRawPointer(receives.bytes(receiveIndex))
        makeRoom(1)
        let step = handshake.hello(p, count: byteCount, batch: sendBatch,
                                   wrId: WorkID.make(queue: tableIndex, generation: generation, kind: WorkID.handshake, index: 0))
        switch step {
        case .broken(let why):
            logger?.warning("handshake from \(peerName): \(why)")
            giveBackReceive(receiveIndex)
            return drop(why, fault: .handshakeFailed)
        case .accepted(let host):
            counters.authenticated()
            logger?.info("\(peerName): host \(host) authenticated")
        case .refused(let reason, let message):
            counters.refused(reason)
            logger?.notice("refused \(peerName): \(message)")
        }
        giveBackReceive(receiveIndex)
        sendQueueFree -= 1
        flushPosts()
    }

    /// Parses the capsule in `receiveIndex` into request `slot` and runs it.
    private func start(_ slot: Int, receiveIndex: Int, byteCount: Int) {
        let r = requests.base + slot
        r.pointee = TargetRequest()
        r.pointee.receiveIndex = receiveIndex
        r.pointee.startedAt = monotonicNanoseconds()
        // SAFETY: the receive buffer is registered, `receiveSize` long, and not
        // reposted until this request's response is posted.
        let p = UnsafeRawPointer(receives.bytes(receiveIndex))
        switch CommandCapsule.parse(p, byteCount: byteCount, limits: limits) {
        case .failure(let f):
            refused(f, byteCount: byteCount)
            guard let tag = f.tag else {
                counters.status(BlockStatus.invalid.rawValue)
                return drop("\(f.check.name): capsule of \(byteCount) bytes is shorter than its header", fault: .badCapsule)
            }
            r.pointee.tag = tag
            r.pointee.status = f.status
        case .success(let cap):
            r.pointee.capsule = cap
            r.pointee.tag = cap.tag
        }
        r.pointee.state = .received
        process(slot)
    }

    /// Moves request `slot` forward until it has to wait. Every decision of a command's
    /// life is here, one case per state; the completion handlers only record what
    /// happened (a transfer, a storage operation, a zeroing or a response ended) by
    /// moving the slot to its next state, then call this.
    private func process(_ slot: Int, fromWaiters: Bool = false) {
        let r = requests.base + slot
        while !isDraining {
            switch r.pointee.state {
            case .free, .transferringFromHost, .executing, .waitingToRetry, .zeroing, .completing:
                // Nothing to decide: the slot waits for an event (see each state's comment).
                return
            case .received:
                r.pointee.state = route(slot)
            case .readyToTransfer:
                let cap = r.pointee.capsule!
                let n = cap.segmentCount
                if (!fromWaiters && !waiters.isEmpty) || sendQueueFree < n { waiters.push(slot); return }
                makeRoom(n)
                var offset = 0
                for i in 0..<n {
                    let s = cap.segment(i)
                    sendBatch.read(
                        wrId: WorkID.make(queue: tableIndex, generation: generation, kind: WorkID.transfer, index: slot),
                        local: dataSegment(slot, cap, offset: offset, length: Int(s.length)),
                        remoteAddress: s.address, rkey: s.rkey, signaled: i == n - 1)
                    offset += Int(s.length)  // ≤ max I/O: validated by parse
                }
                sendQueueFree -= n
                r.pointee.sendQueueHeld = n
                r.pointee.state = .transferringFromHost
            case .readyToExecute:
                r.pointee.state = execute(slot)
            case .readyToComplete:
                if (!fromWaiters && !waiters.isEmpty) || sendQueueFree < completionWorkRequests(slot) {
                    waiters.push(slot)
                    return
                }
                guard complete(slot) else { return }
                r.pointee.state = .completing
            }
        }
    }

    /// A parsed (or refused) capsule: what it needs first. READ-ONLY exports refuse writes;
    /// an inline WRITE's data and GET_ID's identifier are copied into the bounce buffer here.
    private func route(_ slot: Int) -> TargetRequestState {
        let r = requests.base + slot
        guard let cap = r.pointee.capsule, r.pointee.status == .ok else { return .readyToComplete }
        let writes = cap.opcode == .write || cap.opcode == .discard || cap.opcode == .writeZeroes
        if writes && export.config.readOnly {
            r.pointee.status = .readOnly
            return .readyToComplete
        }
        switch cap.opcode {
        case .write where cap.flags.contains(.inlineData):
            // The data stays in the receive buffer (not reposted before the response):
            // `execute` stores it from there.
            return .readyToExecute
        case .write:
            r.pointee.direct = exportRegion != nil
            return .readyToTransfer
        case .read:
            r.pointee.direct = exportRegion != nil
            return .readyToExecute
        case .getID:
            // SAFETY: parse limits GET_ID to 1-20 bytes; the identifier has 20.
            let n = Int(cap.length)
            export.identifier.withUnsafeBytes { id in bounceBase(slot).copyMemory(from: id.baseAddress!, byteCount: n) }
            r.pointee.hasData = true
            return .readyToComplete
        default:
            return .readyToExecute
        }
    }

    /// Starts the storage operation and says where the slot goes: memory exports finish
    /// here (`readyToComplete`, or `zeroing` for a large range); files and devices go to
    /// io_uring (`executing`).
    private func execute(_ slot: Int) -> TargetRequestState {
        let r = requests.base + slot
        let cap = r.pointee.capsule!
        if let mem = store.memory {
            // SAFETY: parse checked offset + length ≤ capacity ≤ the mapping's size (no overflow: it
            // rejects offset + length overflowing), and length ≤ max I/O ≤ the bounce slot's size.
            let p = mem + Int(cap.offset)
            let n = Int(cap.length)
            switch cap.opcode {
            case .read where r.pointee.direct: break  // the data WRITEs read the export itself
            case .read:
                bounceBase(slot).copyMemory(from: p, byteCount: n)
                counters.copied(n)
            case .write where cap.flags.contains(.inlineData):
                // The write itself (a memory export's store is a copy): from the receive buffer.
                p.copyMemory(from: cap.inlineData.baseAddress!, byteCount: n)
            case .write where r.pointee.direct: break  // the RDMA READs wrote the export itself
            case .write:
                p.copyMemory(from: bounceBase(slot), byteCount: n)
                counters.copied(n)
            case .discard, .writeZeroes:
                guard n > Self.zeroChunkBytes else {
                    memset(p, 0, n)
                    break
                }
                // Up to 1 GiB: zeroed a chunk per worker loop turn, so other connections keep being served.
                r.pointee.progress = 0
                zeroingSlots.push(slot)
                counters.chunked()
                return .zeroing
            case .flush, .getID: break
            }
            r.pointee.hasData = cap.opcode == .read
            return .readyToComplete
        }
        return submitStorage(slot) ? .executing : .readyToComplete
    }

    /// Whether slots are waiting for `stepZeroing()`.
    var hasZeroingWork: Bool { !zeroingSlots.isEmpty && !isDraining }

    /// Zeroes one chunk (≤ `zeroChunkBytes`) of the oldest zeroing slot's range, completing
    /// it when its range is done. Returns false when no zeroing is left (or the queue is going).
    func stepZeroing() -> Bool {
        guard !isDraining, let slot = zeroingSlots.peek(), let mem = store.memory else { return false }
        let r = requests.base + slot
        guard let cap = r.pointee.capsule else {
            _ = zeroingSlots.pop()
            return !zeroingSlots.isEmpty
        }
        let done = Int(r.pointee.progress)
        let chunk = min(Self.zeroChunkBytes, Int(cap.length) - done)
        // SAFETY: parse checked offset + length ≤ capacity ≤ the mapping's size; done + chunk ≤ length.
        memset(mem + Int(cap.offset) + done, 0, chunk)
        r.pointee.progress += UInt32(chunk)
        if Int(r.pointee.progress) >= Int(cap.length) {
            _ = zeroingSlots.pop()
            r.pointee.state = .readyToComplete
            process(slot)
        }
        return hasZeroingWork
    }

    /// Queues the (next part of the) storage operation of `slot` on the worker's ring.
    /// False: it could not be queued, and the slot's status says so (I/O error).
    private func submitStorage(_ slot: Int) -> Bool {
        let r = requests.base + slot
        let cap = r.pointee.capsule!
        let ud = WorkID.make(queue: tableIndex, generation: generation, kind: WorkID.storage, index: slot)
        if let image = store.image {
            let n = Int(cap.length)
            let rc: Int32
            switch cap.opcode {
            case .read: rc = image.read(into: bounceBase(slot), count: n, offset: cap.offset, tag: ud)
            case .write where cap.flags.contains(.inlineData):
                // SAFETY: the receive buffer holding the data is not reposted until the response.
                rc = image.write(from: cap.inlineData.baseAddress!, count: n, offset: cap.offset, tag: ud)
            case .write: rc = image.write(from: bounceBase(slot), count: n, offset: cap.offset, tag: ud)
            case .flush: rc = image.flush(tag: ud)
            case .discard: rc = image.discard(offset: cap.offset, count: UInt64(n), tag: ud)
            case .writeZeroes: rc = image.writeZeroes(offset: cap.offset, count: UInt64(n), tag: ud)
            case .getID: rc = -EINVAL
            }
            if rc == 0 {
                storageInFlight += 1
                return true
            }
            // librbd refused to start it (the image is closing, or an invalid range parse let through).
            r.pointee.status = .ioError
            counters.clusterError()
            logClusterError(cap, errno: -rc, what: "could not start")
            return false
        }
        let done = Int(r.pointee.progress)
        let remaining = Int(cap.length) - done
        let at = cap.offset + UInt64(done)  // ≤ capacity: checked by parse
        let fd = store.fd
        let ring = self.ring!
        let queued: Bool
        switch cap.opcode {
        case .read:
            if fixedBufferIndex != nil { counters.fixedBufferOperation() }
            queued = ring.read(fd: fd, into: bounceBase(slot) + done, count: remaining, offset: at,
                               fixedBuffer: fixedBufferIndex, userData: ud)
        case .write where cap.flags.contains(.inlineData):
            // SAFETY: the receive buffer holding the data is not reposted until the response.
            queued = ring.write(fd: fd, from: cap.inlineData.baseAddress! + done, count: remaining, offset: at, userData: ud)
        case .write:
            if fixedBufferIndex != nil { counters.fixedBufferOperation() }
            queued = ring.write(fd: fd, from: bounceBase(slot) + done, count: remaining, offset: at,
                                fixedBuffer: fixedBufferIndex, userData: ud)
        case .flush:
            queued = ring.fsync(fd: fd, datasync: true, userData: ud)
        case .discard:
            queued = ring.fallocate(fd: fd, mode: [.punchHole, .keepSize],
                                    offset: cap.offset, length: UInt64(cap.length), userData: ud)
        case .writeZeroes:
            switch r.pointee.zeroing {
            case .zeroRange:
                queued = ring.fallocate(fd: fd, mode: [.zeroRange, .keepSize],
                                        offset: cap.offset, length: UInt64(cap.length), userData: ud)
            case .punchHole:
                queued = ring.fallocate(fd: fd, mode: [.punchHole, .keepSize],
                                        offset: cap.offset, length: UInt64(cap.length), userData: ud)
            case .writeZeroes:
                let chunk = min(remaining, maxIO)
                // SAFETY: chunk ≤ max I/O, the bounce slot's size.
                memset(bounceBase(slot), 0, chunk)
                queued = ring.write(fd: fd, from: bounceBase(slot), count: chunk, offset: at, userData: ud)
            }
        case .getID:
            queued = false
        }
        if queued {
            storageInFlight += 1
            return true
        }
        // The ring is sized for every slot of every queue; this is a bug, not load.
        r.pointee.status = .ioError
        return false
    }

    /// An RBD operation of `slot` failed with `errno`: true when the slot's status is final
    /// (an I/O error, or read-only), false when it waits to be started again. The cluster's
    /// own timeouts (`rados_osd_op_timeout` = io_timeout) end an operation that hangs; any
    /// error before io_timeout since the command arrived (a blocklisted client, an OSD
    /// refusing, an operation timed out behind another) is retried on the worker's ticks, so
    /// a guest sees an I/O error only once io_timeout has passed.
    private func clusterFailed(_ slot: Int, _ cap: CommandCapsule, errno: Int32) -> Bool {
        let r = requests.base + slot
        if errno == EROFS {
            r.pointee.status = .readOnly
            return true
        }
        if errno == RadosConnection.blocklistedErrno, let image = store.image, !image.connection.isFenced {
            // Fenced: the control plane reopens the image on a new client and drops this
            // export's connections, whose initiators resubmit (nothing of this client lands).
            image.connection.markFenced()
            logger?.error("export \(export.config.name) (rbd \(image.name)) for \(peerName): the cluster blocklisted this gateway's client.\(image.connection.instanceID); the image is reopened on a new client")
        }
        let waited = monotonicNanoseconds() &- r.pointee.startedAt
        // ETIMEDOUT too: librbd fails an operation that waited behind another one (the exclusive
        // lock's, the watch's) when that one times out, which can be well within io_timeout.
        if errno != EINVAL, waited < clusterTimeoutNanoseconds {
            if retryingSlots.isEmpty { logClusterError(cap, errno: errno, what: "failed; starting it again within io_timeout", final: false) }
            counters.clusterRetry()
            r.pointee.state = .waitingToRetry
            retryingSlots.push(slot)
            return false
        }
        r.pointee.status = .ioError
        counters.clusterError()
        logClusterError(cap, errno: errno, what: "failed after \(waited / 1_000_000) ms")
        return true
    }

    /// Logs an RBD error (the first few per connection; all are counted).
    private func logClusterError(_ cap: CommandCapsule, errno: Int32, what: String, final: Bool = true) {
        let now = monotonicNanoseconds()
        if now &- clusterErrorWindowStart > 10_000_000_000 {
            clusterErrorWindowStart = now
            clusterErrorsLogged = 0
        }
        guard clusterErrorsLogged < Self.loggedClusterErrors, let logger else { return }
        clusterErrorsLogged += 1
        let name = store.image?.name ?? "?"
        let outcome = final ? "the guest gets an I/O error" : "no error for the guest yet"
        let more = clusterErrorsLogged == Self.loggedClusterErrors ? " (further errors on this connection in these 10 s are counted, not logged)" : ""
        logger.error("export \(export.config.name) (rbd \(name)) for \(peerName): \(cap.opcode) of \(cap.length) bytes at \(cap.offset) \(what): \(String(cString: strerror(errno))) (errno \(errno)); \(outcome)\(more)")
    }

    /// Starts again the RBD operations the cluster failed (the worker's tick).
    func retryClusterOperations() {
        guard !isDraining else { return }
        for _ in 0..<retryingSlots.count {
            guard let slot = retryingSlots.pop() else { break }
            let r = requests.base + slot
            guard r.pointee.state == .waitingToRetry else { continue }
            if submitStorage(slot) {
                r.pointee.state = .executing
            } else {
                r.pointee.state = .readyToComplete
                process(slot)
            }
        }
    }

    /// Posts READ/GET_ID data (one RDMA WRITE per segment, unsignaled) and the
    /// response SEND (signaled) in one chain, after reposting the receive buffer.
    /// False: posting failed and the connection is going.
    private func complete(_ slot: Int) -> Bool {
        let r = requests.base + slot
        let need = completionWorkRequests(slot)
        let dataWRs = need - 1
        makeRoom(need)
        if dataWRs > 0 {
            let cap = r.pointee.capsule!
            var offset = 0
            for i in 0..<dataWRs {
                let s = cap.segment(i)
                sendBatch.write(
                    wrId: WorkID.make(queue: tableIndex, generation: generation, kind: WorkID.data, index: slot),
                    local: dataSegment(slot, cap, offset: offset, length: Int(s.length)),
                    remoteAddress: s.address, rkey: s.rkey, signaled: false)
                offset += Int(s.length)
            }
        }
        let responseOffset = slot * Wire.responseSize
        // SAFETY: `responses` holds depth × 16 bytes and slot < depth.
        ResponseCapsule.write(responses!.bytes.baseAddress! + responseOffset, tag: r.pointee.tag, status: r.pointee.status)
        // A command on the initiator's memory windows: the response invalidates segment 0's
        // (the initiator sees the key in its receive completion, after the window is gone).
        var invalidating: UInt32?
        if let cap = r.pointee.capsule, cap.flags.contains(.invalidate) { invalidating = cap.segment(0).rkey }
        sendBatch.send(
            wrId: WorkID.make(queue: tableIndex, generation: generation, kind: WorkID.response, index: slot),
            local: responses!.region.segment(offset: responseOffset, length: Wire.responseSize),
            invalidating: invalidating, signaled: true, inline: true)
        // Counters (before the capsule's buffer is reposted).
        if let cap = r.pointee.capsule {
            counters.command(cap.opcode.rawValue)
            if r.pointee.status == .ok {
                if cap.opcode == .read { counters.read(Int(cap.length)) }
                if cap.opcode == .write { counters.written(Int(cap.length)) }
            }
        } else {
            counters.command(0)
        }
        if r.pointee.status != .ok { counters.status(r.pointee.status.rawValue) }
        export.counters.completed(opcode: r.pointee.capsule?.opcode, ok: r.pointee.status == .ok,
                                  length: r.pointee.capsule?.length ?? 0,
                                  nanoseconds: monotonicNanoseconds() &- r.pointee.startedAt)
        r.pointee.capsule = nil
        // The receive goes back before the response leaves (`flushPosts` posts its own receives
        // first; the worker posts a shared pool's before any queue's sends), so a new command
        // never meets an empty queue.
        giveBackReceive(r.pointee.receiveIndex)
        r.pointee.receiveIndex = -1
        sendQueueFree -= need
        r.pointee.sendQueueHeld = need
        return true
    }

    /// Send-queue entries completing `slot` takes: its data WRITEs (READ, GET_ID) and the response.
    @inline(__always)
    private func completionWorkRequests(_ slot: Int) -> Int {
        let r = requests.base + slot
        return (r.pointee.hasData && r.pointee.status == .ok ? r.pointee.capsule!.segmentCount : 0) + 1
    }

    /// The response SEND of `slot` completed: the slot (and its bounce buffer) is free again.
    private func finished(_ slot: Int) {
        let r = requests.base + slot
        sendQueueFree += r.pointee.sendQueueHeld
        r.pointee.sendQueueHeld = 0
        r.pointee.state = .free
        if let pending = pendingReceives.pop() {
            start(slot, receiveIndex: pending >> 20, byteCount: pending & 0xfffff)
        } else {
            freeSlots.push(slot)
        }
        serveWaiters()
    }

    /// Lets waiting slots post while the send queue has room, oldest first.
    private func serveWaiters() {
        while !isDraining, let slot = waiters.peek() {
            let r = requests.base + slot
            let need: Int
            switch r.pointee.state {
            case .readyToTransfer: need = r.pointee.capsule!.segmentCount
            case .readyToComplete: need = completionWorkRequests(slot)
            default: need = 0
            }
            guard sendQueueFree >= need else { return }
            _ = waiters.pop()
            process(slot, fromWaiters: true)
        }
    }

    // MARK: helpers

    @inline(__always)
    private func bounceBase(_ slot: Int) -> UnsafeMutableRawPointer {
        bounce!.bytes.baseAddress! + slot * bounceStride
    }

    /// Receive buffer `index` is free again: batched for posting (own), or back to the shared pool.
    @inline(__always)
    private func giveBackReceive(_ index: Int) {
        if receives.isShared { receivesHeld -= 1 }
        receives.giveBack(index)
    }

    /// Where segment data at `offset` of slot `slot`'s command lives: the registered memory
    /// export itself (direct), or the slot's bounce buffer.
    @inline(__always)
    private func dataSegment(_ slot: Int, _ cap: CommandCapsule, offset: Int, length: Int) -> ScatterGatherElement {
        if requests[slot].direct, let mr = exportRegion {
            // SAFETY (bounds): parse checked offset + length ≤ capacity, the region's length.
            return mr.segment(offset: Int(cap.offset) + offset, length: length)
        }
        return bounce!.region.segment(offset: slot * bounceStride + offset, length: length)
    }

    /// Posts what is batched first when `n` more send work requests would not fit.
    @inline(__always)
    private func makeRoom(_ n: Int) {
        if sendBatch.count + n > sendBatch.capacity { flushPosts() }
    }

    /// Posts the batched receives, then the batched sends (one call each); false when
    /// posting failed and the connection is going.
    @inline(__always) @discardableResult
    package func flushPosts() -> Bool {
        if isDraining {
            if !receives.isShared { receives.discardBatch() }
            sendBatch.reset()
            return false
        }
        do {
            if !receives.isShared { try receives.flush(costs: costs) }
            try workQueue.post(sendBatch, costs: costs)
            return true
        } catch {
            if !receives.isShared { receives.discardBatch() }
            sendBatch.reset()
            drop("\(error)", fault: .postFailed)
            return false
        }
    }
}
