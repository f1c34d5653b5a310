import Logging
import Synchronization
import VhostUser
import Virtio
import VireoFabric
import VireoSys
import VireoWire

/// One RX/TX queue pair of a remote NIC and its connection to the target
/// network (queue index i), zero-copy both ways:
///
/// - TX: a chain (virtio-net header + frame) becomes one SEND_WITH_IMM whose
///   gather list is the guest's own buffers; the chain completes when the
///   SEND does. The TX ring is not popped while no credit is held
///   (`admissionBudget`).
/// - RX: guest chains become receive work requests (one chain, or several
///   with MRG_RXBUF, per frame), so the target's SEND lands in guest memory;
///   the CPU writes only `num_buffers`. Each receive posted is a credit
///   granted to the target (piggybacked on frames, or a credit-only SEND).
///
/// Everything runs on the pair's worker thread, except `init` and what is
/// marked "(control, parked)". Nothing on the frame path allocates, locks or logs.
final class NetQueuePair: @unchecked Sendable {
    // SAFETY (Sendable): see the threading note above; cross-thread signals
    // go through `link` (atomics, a `Locked` for the connection handover).

    /// Work-request kinds (the id layout is `WorkID`'s; the generation is the epoch).
    private enum Work: UInt64 { case frame = 1, credit = 2, receive = 3 }
    /// A receive slot: free (no chains), assembled (chains, not posted),
    /// posted (a receive of the current connection), flushing (a receive of
    /// a connection moved to error whose completion has not been reaped yet:
    /// the RNIC may still write into its buffers, so they stay with the device).
    private enum RxSlotState: UInt8 { case free, assembled, posted, flushing }
    /// One receive slot (one frame): its state and what it holds. Its chains and
    /// SGEs live in `rxChains` and `rxSGEs` at `slot * maxRxSegments`.
    private struct RxSlot {
        var state: RxSlotState = .free
        /// Guest chains gathered into the slot.
        var chains = 0
        /// SGEs their buffers make.
        var segments = 0
        /// The epoch the slot's receive was posted with.
        var postEpoch: UInt16 = 0
    }
    /// How long a lost connection's receives may take to flush before their
    /// buffers are reclaimed anyway (a device that never flushes).
    static let flushTimeoutNanoseconds: UInt64 = 2_000_000_000

    let index: Int
    let rxQueue: Int
    let txQueue: Int
    let link: QueueLink<PacketGeometry>
    unowned let nic: RemoteNetDevice
    let logger: Logger
    let counters: RemoteNetCounters
    /// Completion queue shared by every connection of this pair (stable wake fd).
    let cq: any CompletionSource
    private let completions = CompletionBuffer(capacity: 64)
    /// What this queue pair's fabric side costs its worker thread (posts, arms).
    let costs = DataPathCosts()
    private let maxTxSegments = PacketConnector.maxSendSegments
    private let maxRxSegments = PacketConnector.maxReceiveSegments
    private let txSlotCount: Int
    private let rxSlotCount: Int
    private let sendBatch: SendBatch
    private let recvBatch: RecvBatch

    // TX
    private var txRequests: [VhostUserQueueRequest?]
    private var txFree: FixedRing<Int>
    private var txInFlight = 0
    private let txScratch: FixedArray<ScatterGatherElement>

    // RX: chains held but in no receive, and receive slots (one per frame).
    private var rxSpare: FixedRing<VhostUserQueueRequest>
    private var rxChains: [VhostUserQueueRequest?]
    private let rxSGEs: FixedArray<ScatterGatherElement>
    private var rx: [RxSlot]
    private var rxFree: FixedRing<Int>
    private var rxAssembled: FixedRing<Int>
    private var rxPosted = 0
    /// Slots in state flushing, and when to stop waiting for them.
    private var rxFlushing = 0
    private var flushDeadline: UInt64 = 0
    /// The connection whose receives are flushing: kept alive (its QP not
    /// destroyed) until every one of them completed.
    private var flushingConnection: (any FabricLink)?
    /// Parking: flushed receive buffers go back to the guest (empty) instead
    /// of being posted again.
    private var returningReceives = false
    /// RX chains held (spare or in a slot), for stats and tests.
    private let held = Atomic<Int>(0)
    /// Receives in `recvBatch` that grant a credit when posted.
    private var batchGrants = 0
    private let capacities: FixedArray<UInt32>
    private let rxScratch: FixedArray<ScatterGatherElement>
    private let lengths: FixedArray<UInt32>

    // Connection
    /// The connection and its lifecycle (loss, reconnect, epochs).
    private var fabric: QueueConnection<PacketGeometry>
    private var connection: (any FabricLink)? { fabric.current }
    /// Tags work requests of the current connection (the generation field of `WorkID`).
    private var epoch: UInt16 { fabric.epoch }
    private(set) var maxFrameBytes: UInt32
    /// Several pairs (MQ) that the target did not join into one port (an
    /// older target): filter floods and the NIC's own frames on receive.
    private var filtersFloods: Bool
    private(set) var credits = NetCredits()
    private var creditMessagesInFlight = 0

    init(index: Int, nic: RemoteNetDevice, connection: any FabricLink, geometry: PacketGeometry,
         link: QueueLink<PacketGeometry>, logger: Logger) {
        self.index = index
        rxQueue = 2 * index
        txQueue = 2 * index + 1
        self.nic = nic
        self.link = link
        self.logger = logger
        counters = nic.counters
        cq = connection.completions
        fabric = QueueConnection(link: link, first: connection)
        maxFrameBytes = geometry.maxFrameBytes
        filtersFloods = nic.config.queuePairs > 1 && !geometry.portJoined
        txSlotCount = nic.config.queueSize
        rxSlotCount = nic.config.queueSize
        sendBatch = SendBatch(capacity: txSlotCount + PacketConnector.creditMessageSlots, maxSegments: maxTxSegments)
        recvBatch = RecvBatch(capacity: rxSlotCount, maxSegments: maxRxSegments)
        txRequests = [VhostUserQueueRequest?](repeating: nil, count: txSlotCount)
        txFree = FixedRing(capacity: txSlotCount)
        for s in 0..<txSlotCount { txFree.push(s) }
        txScratch = FixedArray(repeating: Self.noSGE, count: maxTxSegments)
        rxSpare = FixedRing(capacity: rxSlotCount)
        rxChains = [VhostUserQueueRequest?](repeating: nil, count: rxSlotCount * maxRxSegments)
        rxSGEs = FixedArray(repeating: Self.noSGE, count: rxSlotCount * maxRxSegments)
        rx = [RxSlot](repeating: RxSlot(), count: rxSlotCount)
        rxFree = FixedRing(capacity: rxSlotCount)
        for s in 0..<rxSlotCount { rxFree.push(s) }
        rxAssembled = FixedRing(capacity: rxSlotCount)
        capacities = FixedArray(repeating: 0, count: maxRxSegments)
        rxScratch = FixedArray(repeating: Self.noSGE, count: maxRxSegments)
        lengths = FixedArray(repeating: 0, count: maxRxSegments)
        credits.reset(targetBuffers: Int(geometry.receiveBuffers), announced: NetCredits.announcement(assembled: 0))
        link.initialCredits.store(NetCredits.announcement(assembled: 0), ordering: .releasing)
    }

    private static let noSGE = ScatterGatherElement(address: 0, length: 0, lkey: 0)

    /// The descriptors the worker sleeps on: the CQ's channel and the link's wake eventfd.
    var wakeDescriptors: [Int32] { [cq.wakeFD, link.workerWake.fd].compactMap { $0 } }
    var isConnected: Bool { connection != nil }

    // MARK: Guest chains (worker)

    /// How many chains the worker may pop from `queue` now: TX only while
    /// credits and send slots last (none: the chains wait in the ring); when
    /// the link is down, TX chains are taken and dropped.
    func admissionBudget(queue: Int) -> Int {
        guard queue == txQueue, connection != nil else { return .max }
        return min(credits.transmit, txFree.count)
    }

    func handle(_ req: VhostUserQueueRequest) {
        if req.queueIndex == txQueue { transmit(req) } else { acceptReceiveBuffer(req) }
    }

    private func transmit(_ req: VhostUserQueueRequest) {
        guard connection != nil else {
            counters.bump(counters.txDroppedLinkDown)
            req.complete(writtenLength: 0)
            return
        }
        guard credits.canSend, let slot = txFree.pop() else {
            // Not reached through the worker (admissionBudget); a resubmitted chain may.
            counters.bump(counters.txCreditStalls)
            counters.bump(counters.txDroppedInvalid)
            req.complete(writtenLength: 0)
            return
        }
        switch NetFramePlan.transmit(req.chain, regions: nic.regions, maxSegments: maxTxSegments,
                                     maxFrameBytes: maxFrameBytes, into: txScratch.base) {
        case .drop:
            txFree.push(slot)
            counters.bump(counters.txDroppedInvalid)
            req.complete(writtenLength: 0)
        case .send(let n, let bytes):
            // SAFETY: `transmit` wrote n ≤ maxTxSegments SGEs to txScratch (capacity maxTxSegments).
            let grant = credits.takeForFrame()
            if !credits.canSend { counters.bump(counters.txCreditStalls) }
            sendBatch.send(wrId: wrID(.frame, slot), local: txScratch[0], immediate: PacketImmediate.frame(credits: grant))
            for k in 1..<n { sendBatch.appendSegment(txScratch[k]) }
            txRequests[slot] = req
            txInFlight += 1
            counters.bump(counters.txFrames)
            counters.bump(counters.txBytes, UInt64(bytes))
        }
    }

    /// An RX chain: checked now (structure, registered memory), held until it
    /// is part of a receive work request.
    private func acceptReceiveBuffer(_ req: VhostUserQueueRequest) {
        guard !rxSpare.isFull,
              NetFramePlan.receive(req.chain, regions: nic.regions, maxSegments: maxRxSegments, into: rxScratch.base) != nil
        else {
            counters.bump(counters.rxBuffersRejected)
            req.complete(writtenLength: 0)
            return
        }
        rxSpare.push(req)
        held.add(1, ordering: .relaxed)
    }

    // MARK: Worker loop

    /// Adopt a new connection, reap completions, build and post receives,
    /// send what is queued and the credits owed. Returns how much work it did.
    func poll() -> Int {
        var did = 0
        if rxFlushing > 0, monotonicNanoseconds() > flushDeadline { abandonFlush() }
        // A new connection waits until the old one's receives are flushed.
        if rxFlushing == 0, fabric.hasPending { adopt(); did += 1 }
        if fabric.lossSignalled {
            lose("the target disconnected")
            did += 1
        }
        if connection != nil, link.detached.load(ordering: .relaxed) {
            lose("the NIC was deleted with force (control API); no reconnect")
            did += 1
        }
        did += reap()
        did += assemble()
        if let conn = connection {
            did += postReceives(conn)
            if creditMessagesInFlight < PacketConnector.creditMessageSlots,
               credits.wantsCreditMessage(window: rxSlotCount, idle: sendBatch.isEmpty) {
                sendBatch.send(wrId: wrID(.credit, 0), local: nil, immediate: PacketImmediate.credit(credits.takeGrant()))
                creditMessagesInFlight += 1
                counters.bump(counters.creditMessagesSent)
            }
            if !sendBatch.isEmpty {
                did += 1
                do { try conn.workQueue.post(sendBatch, costs: costs) } catch { lose("ibv_post_send: \(error)") }
            }
        } else {
            let announce = NetCredits.announcement(assembled: rxAssembled.count)
            if link.initialCredits.load(ordering: .relaxed) != announce {
                link.initialCredits.store(announce, ordering: .releasing)
            }
        }
        return did
    }

    /// Whether a signal from the supervisor is waiting (checked before sleeping).
    var hasSignals: Bool {
        fabric.hasPending || fabric.lossSignalled
    }

    /// Before the worker sleeps (see `QueueLink.armForSleep`); true: there is work, do not sleep.
    func prepareToSleep() -> Bool {
        guard link.armForSleep(cq, costs: costs) else { return true }
        return poll() > 0 || hasSignals
    }

    /// Drains the CQ (also while disconnected: completions of dead
    /// connections are discarded, so they never crowd the shared CQ).
    private func reap() -> Int {
        var done = 0
        while true {
            let n: Int
            do { n = try cq.poll(into: completions) } catch { lose("ibv_poll_cq: \(error)"); break }
            if n == 0 { break }
            for k in 0..<n {
                let c = completions[k]
                let i = WorkID.index(c.wrId)
                guard fabric.isCurrent(c.wrId), connection != nil else {
                    // A lost connection's work request: a receive it flushed (or
                    // filled before the flush) gives its buffers back now.
                    if retireIfFlushed(c) { done += 1 }
                    continue
                }
                // A failure ends the connection; the rest of this batch (the other
                // receives' flushes, typically) is still taken below, as the lost
                // connection's, and so is this completion if it was a receive.
                guard c.isSuccess else {
                    lose("\(c.error)")
                    if retireIfFlushed(c) { done += 1 }
                    continue
                }
                switch Work(rawValue: WorkID.kind(c.wrId)) {
                case .frame:
                    guard i < txSlotCount, let r = txRequests[i] else { lose("send completion for unknown slot \(i)"); continue }
                    txRequests[i] = nil
                    txFree.push(i)
                    txInFlight -= 1
                    r.complete(writtenLength: 0)
                case .credit:
                    creditMessagesInFlight -= 1
                case .receive:
                    guard received(slot: i, c) else {
                        if retireIfFlushed(c) { done += 1 }   // its buffers: the peer broke the connection on them
                        continue
                    }
                case nil:
                    continue
                }
                done += 1
            }
        }
        return done
    }

    /// A completion of a lost connection's receive whose slot is flushing: the RNIC is
    /// done with its buffers, which go back (or are kept for the next connection). True
    /// when it was one.
    private func retireIfFlushed(_ c: Completion) -> Bool {
        let i = WorkID.index(c.wrId)
        guard rxFlushing > 0, Work(rawValue: WorkID.kind(c.wrId)) == .receive, i < rxSlotCount,
              rx[i].state == .flushing, rx[i].postEpoch == WorkID.generation(c.wrId) else { return false }
        retireFlushed(slot: i)
        return true
    }

    /// A message from the target landed in receive slot `slot`; false when the peer is broken.
    private func received(slot i: Int, _ c: Completion) -> Bool {
        guard i < rxSlotCount, rx[i].state == .posted else {
            lose("receive completion for unknown buffer \(i)")
            return false
        }
        guard c.hasImmediate, let imm = PacketImmediate(rawValue: c.immediate),
              imm.kind == .frame || c.byteLength == 0 else {
            counters.bump(counters.badMessages)
            lose("message without a valid immediate, or a credit message with a payload (peer broken)")
            return false
        }
        rxPosted -= 1
        credits.granted(imm.credits)
        if imm.kind == .credit {
            // The guest never sees it: the same buffers go straight back (no new credit).
            counters.bump(counters.creditMessagesReceived)
            addReceive(slot: i)
            return true
        }
        let length = c.byteLength
        guard length >= NetFramePlan.minFrameBytes else {
            // The target spent a credit on it: posting the buffers again grants it back.
            counters.bump(counters.rxRunts)
            rx[i].state = .assembled
            rxAssembled.push(i)
            return true
        }
        let base = i * maxRxSegments
        if filtersFloods, let (dst, src) = NetFramePlan.addresses(in: rxChains[base]!.chain),
           src == nic.config.mac || (index > 0 && dst.isMulticast) {
            // (Older target, no PORT_JOINED.) Every pair is its own switch port: the NIC's own floods come back
            // on its other pairs, and floods reach every pair. Deliver floods
            // on pair 0 only and never the NIC's own frames (the buffers are
            // posted again, which grants the credit back).
            counters.bump(counters.rxFiltered)
            rx[i].state = .assembled
            rxAssembled.push(i)
            return true
        }
        let n = rx[i].chains
        // SAFETY: n ≤ maxRxSegments, the capacity of `capacities` and `lengths`.
        for j in 0..<n { capacities[j] = rxChains[base + j]!.chain.writableBytes }
        let used = NetFramePlan.spread(byteLength: length, capacities: UnsafeBufferPointer(start: capacities.base, count: n),
                                       lengths: lengths.base)
        NetFramePlan.writeReceiveHeader(numBuffers: UInt16(truncatingIfNeeded: used), into: rxChains[base]!.chain)
        counters.bump(counters.rxFrames)           // before the guest can see the frame
        counters.bump(counters.rxBytes, UInt64(length))
        if used > 1 { counters.bump(counters.rxMerged) }
        for j in 0..<n {
            let r = rxChains[base + j]!
            rxChains[base + j] = nil
            if j < used { r.complete(writtenLength: lengths[j]) } else { rxSpare.push(r) }  // unused: posted again later
        }
        held.subtract(used, ordering: .relaxed)
        rx[i].chains = 0
        rx[i].segments = 0
        rx[i].state = .free
        rxFree.push(i)
        return true
    }

    /// Builds receive slots from held chains: one chain that holds a max
    /// frame, or (MRG_RXBUF) as many consecutive chains as it takes.
    private func assemble() -> Int {
        var made = 0
        let mergeable = nic.mergeableRxBuffers
        while !rxSpare.isEmpty, !rxFree.isEmpty {
            var k = 0, segments = 0
            var bytes: UInt32 = 0
            while k < rxSpare.count, bytes < maxFrameBytes {
                let c = rxSpare[k].chain
                if segments + c.count > maxRxSegments { break }
                segments += c.count
                let (sum, overflow) = bytes.addingReportingOverflow(c.writableBytes)
                bytes = overflow ? .max : sum
                k += 1
                if !mergeable { break }
            }
            if bytes < maxFrameBytes {
                if k < rxSpare.count || !mergeable || k == 0 {
                    // The head chain can never be part of a big enough receive.
                    counters.bump(counters.rxBuffersRejected)
                    rxSpare.pop()!.complete(writtenLength: 0)
                    held.subtract(1, ordering: .relaxed)
                    continue
                }
                break  // wait for more buffers
            }
            let slot = rxFree.pop()!
            let base = slot * maxRxSegments
            var sges = 0
            for j in 0..<k {
                let r = rxSpare.pop()!
                // Checked on arrival; memory cannot change while chains are held (quiesce gives them back).
                // SAFETY: sges + remaining ≤ maxRxSegments: slot `slot` owns rxSGEs[base ..< base + maxRxSegments].
                let m = NetFramePlan.receive(r.chain, regions: nic.regions, maxSegments: maxRxSegments - sges,
                                             into: rxSGEs.base + base + sges) ?? 0
                rxChains[base + j] = r
                sges += m
            }
            rx[slot].chains = k
            rx[slot].segments = sges
            rx[slot].state = .assembled
            rxAssembled.push(slot)
            made += 1
        }
        return made
    }

    /// Adds receive slot `i` to the receive batch (state posted).
    @inline(__always)
    private func addReceive(slot i: Int) {
        let base = i * maxRxSegments
        // SAFETY: i < rxSlotCount; the slot's SGEs are rxSGEs[base ..< base + rx[i].segments].
        recvBatch.receive(wrId: wrID(.receive, i), local: rxSGEs[base])
        for k in 1..<max(1, rx[i].segments) { recvBatch.appendSegment(rxSGEs[base + k]) }
        rx[i].state = .posted
        rx[i].postEpoch = epoch
        rxPosted += 1
    }

    /// Posts every assembled slot (each a credit owed to the target) and any re-posts.
    private func postReceives(_ conn: any FabricLink) -> Int {
        var n = 0
        while let s = rxAssembled.pop() {
            addReceive(slot: s)
            batchGrants += 1
            n += 1
        }
        guard !recvBatch.isEmpty else { return n }
        do { try conn.workQueue.post(recvBatch, costs: costs) } catch { lose("ibv_post_recv: \(error)"); return n }
        credits.posted(batchGrants)
        counters.bump(counters.receivesPosted, UInt64(batchGrants))
        batchGrants = 0
        return n
    }

    @inline(__always)
    private func wrID(_ w: Work, _ i: Int) -> UInt64 {
        fabric.workID(kind: w.rawValue, index: i)
    }

    // MARK: Fabric loss and reconnect (worker; rare path: may log)

    /// The connection is unusable: stop the RNIC touching guest memory (QP to
    /// error), complete frames in flight (Ethernet may lose them), keep RX
    /// chains for the next connection, ask the supervisor for a new one.
    /// Posted receives become flushing: their buffers are the RNIC's until
    /// their completion (flush error, or a frame that landed first) is
    /// reaped, so they are neither re-posted nor given back before that.
    /// `quiet`: a quiesce, not a fabric loss (the link stays reported up).
    /// `keepReceives`: false when every RX chain is about to go back to the
    /// guest (nothing is announced to the next connection).
    func lose(_ reason: String, quiet: Bool = false, keepReceives: Bool = true) {
        guard connection != nil else { return }
        fabric.stopTraffic()
        let conn = fabric.forget()
        sendBatch.reset()
        recvBatch.reset()
        batchGrants = 0
        var lost = 0
        for s in 0..<txSlotCount {
            if let r = txRequests[s] {
                txRequests[s] = nil
                txFree.push(s)
                r.complete(writtenLength: 0)
                lost += 1
            }
        }
        txInFlight = 0
        counters.bump(counters.txLostInFlight, UInt64(lost))
        for s in 0..<rxSlotCount where rx[s].state == .posted {
            rx[s].state = .flushing
            rxFlushing += 1
        }
        if rxFlushing > 0 {
            flushingConnection = conn
            flushDeadline = monotonicNanoseconds() &+ Self.flushTimeoutNanoseconds
        }
        rxPosted = 0
        creditMessagesInFlight = 0
        let announce = keepReceives ? NetCredits.announcement(assembled: rxAssembled.count + rxFlushing) : 0
        link.initialCredits.store(announce, ordering: .releasing)
        counters.bump(counters.connectionsLost)
        nic.pairDisconnected(index, quiet: quiet)
        let level: Logger.Level = quiet ? .info : .warning
        logger.log(level: level, "nic \(nic.config.socket) pair \(index): connection to \(nic.config.target) network \(nic.config.network) dropped (\(reason)); \(lost) frame(s) in flight lost, holding \(rxAssembled.count + rxSpare.count) receive buffer(s), \(rxFlushing) receive(s) flushing; reconnecting")
        fabric.requestReconnect()
    }

    /// Takes the supervisor's new connection: receives are posted on the next poll.
    private func adopt() {
        guard let p = fabric.takePending() else { return }
        if link.detached.load(ordering: .relaxed) { return fabric.refuse(p) }
        fabric.beginEpoch()
        _ = reap()          // discard what the old connection left in the shared CQ
        if p.geometry.maxFrameBytes != maxFrameBytes {
            logger.notice("nic \(nic.config.socket) pair \(index): max frame changed from \(maxFrameBytes) to \(p.geometry.maxFrameBytes) bytes; giving receive buffers back")
            returnAllReceives()
            maxFrameBytes = p.geometry.maxFrameBytes
        }
        fabric.adopt(p)
        filtersFloods = nic.config.queuePairs > 1 && !p.geometry.portJoined
        credits.reset(targetBuffers: Int(p.geometry.receiveBuffers), announced: p.announcedCredits)
        creditMessagesInFlight = 0
        counters.bump(counters.reconnects)
        logger.notice("nic \(nic.config.socket) pair \(index): connected to \(nic.config.target) network \(nic.config.network) (MTU \(p.geometry.mtu), \(p.geometry.receiveBuffers) target buffers, \(rxAssembled.count) receive(s) to post, \(p.announcedCredits) announced)")
        nic.pairConnected(index)
    }

    // MARK: Control plane (worker parking, or parked)

    /// (Worker, about to park) Gives every RX chain back so the drain can
    /// finish: receives posted to the RNIC are cut off first (QP to error,
    /// reconnect afterwards); held chains go back now, posted ones as their
    /// flush completions are reaped (the drain keeps calling `poll`), each
    /// exactly once. Chains still in the RX ring stay there (the next avail
    /// index covers them).
    func willPark() {
        if connection != nil, rxPosted > 0 || credits.owed > 0 {
            lose("vhost-user quiesce: giving posted receive buffers back", quiet: true, keepReceives: false)
        }
        returnAllReceives()
    }

    /// A flushing slot's completion was reaped: the RNIC is done with its
    /// buffers. They go back to the guest (parking) or are posted again.
    private func retireFlushed(slot i: Int) {
        rxFlushing -= 1
        if returningReceives {
            counters.bump(counters.rxBuffersReturned, UInt64(returnSlot(i)))
        } else {
            rx[i].state = .assembled
            rxAssembled.push(i)
        }
        if rxFlushing == 0 { finishFlush() }
    }

    /// The flush did not finish in time (a device that never completes):
    /// the buffers are taken back anyway.
    private func abandonFlush() {
        logger.warning("nic \(nic.config.socket) pair \(index): \(rxFlushing) receive(s) of the lost connection not flushed after \(Self.flushTimeoutNanoseconds / 1_000_000) ms; taking their buffers back")
        for s in 0..<rxSlotCount where rx[s].state == .flushing { retireFlushed(slot: s) }
    }

    private func finishFlush() {
        flushingConnection = nil
        returningReceives = false
        if connection == nil {
            link.initialCredits.store(NetCredits.announcement(assembled: rxAssembled.count), ordering: .releasing)
        }
    }

    /// Completes slot `i`'s chains empty and frees it; returns how many.
    private func returnSlot(_ s: Int) -> Int {
        let base = s * maxRxSegments
        let n = rx[s].chains
        for j in 0..<n {
            rxChains[base + j]?.complete(writtenLength: 0)
            rxChains[base + j] = nil
        }
        held.subtract(n, ordering: .relaxed)
        rx[s].chains = 0
        rx[s].segments = 0
        rx[s].state = .free
        rxFree.push(s)
        return n
    }

    /// Completes every held RX chain empty. Posted ones may not exist;
    /// flushing ones go back when their completion is reaped.
    private func returnAllReceives() {
        var n = 0
        while let r = rxSpare.pop() { r.complete(writtenLength: 0); n += 1 }
        held.subtract(n, ordering: .relaxed)
        rxAssembled.removeAll()
        for s in 0..<rxSlotCount {
            precondition(rx[s].state != .posted, "returning posted receive buffers")
            if rx[s].state == .assembled { n += returnSlot(s) }
        }
        returningReceives = rxFlushing > 0
        counters.bump(counters.rxBuffersReturned, UInt64(n))
        link.initialCredits.store(NetCredits.announcement(assembled: 0), ordering: .releasing)
    }

    /// (Control, after the worker stopped) Drops the connection for shutdown.
    func close() {
        fabric.close()
    }

    /// RX chains the pair holds (any thread).
    var heldReceiveBuffers: Int { held.load(ordering: .relaxed) }
}
