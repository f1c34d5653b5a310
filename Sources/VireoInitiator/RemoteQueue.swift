import Synchronization
import Logging
import VhostUser
import Virtio
import VireoFabric
import VireoSys
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// One virtqueue of a remote disk and its connection to the target (queue
/// index i). Everything here runs on the queue's worker thread, except
/// `init` and the control-plane entry points marked "(control, parked)",
/// which run while vhost-user has the worker parked (its pause handshake
/// orders those accesses). Nothing on the request path allocates, locks or logs.
final class RemoteQueue: @unchecked Sendable {
    // SAFETY (Sendable): see the threading note above; cross-thread signals
    // go through `link` (atomics, a `Locked` for the connection handover).

    let index: Int
    let slotCount: Int
    let link: QueueLink<BlockGeometry>
    unowned let disk: RemoteBlockDevice
    let logger: Logger
    let counters: RemoteDiskCounters
    /// Completion queue shared by every connection this queue makes (its
    /// channel fd is a stable wake descriptor for the worker).
    let cq: any CompletionSource
    private let completions = CompletionBuffer(capacity: 64)
    /// What this queue's fabric side costs its worker thread (posts, arms, empty polls).
    let costs = DataPathCosts()
    /// Capsule buffers, one per slot, `capsuleStride` apart.
    private let capsules: RegisteredBuffer
    private let capsuleStride: Int
    /// 16-byte response receive buffers, one per slot.
    private let responses: RegisteredBuffer
    private let sendBatch: SendBatch
    private let recvBatch: RecvBatch
    private let slots: FixedArray<RequestSlot>
    private var fifo: FixedRing<Int>

    /// The connection and its lifecycle (loss, reconnect, epochs).
    private var fabric: QueueConnection<BlockGeometry>
    private var connection: (any FabricLink)? { fabric.current }
    private var limits: CapsuleLimits
    private var blkLimits: BlkDeviceLimits
    /// Commands allowed in flight (granted depth).
    private var credits: Int
    private var inFlight = 0
    /// Work requests posted on the current connection and not yet completed
    /// (sends and receives): after `moveToError`, every one of them flushes,
    /// and only then is the RNIC done with the memory they name.
    private var postedWorkRequests = 0
    /// When the connection was lost (monotonic ns; 0: connected or never lost).
    private var lostSince: UInt64 = 0
    /// The loss timeout passed: requests fail with IOERR until a reconnect.
    private var failingFast = false

    /// Work-request kinds (the id layout is `WorkID`'s; the generation is the epoch).
    private static let sendKind: UInt64 = 1, receiveKind: UInt64 = 2, bindKind: UInt64 = 3, invalidateKind: UInt64 = 4

    /// Per-command memory windows (`DiskConfig.RemoteAccess.windows`): slot s's are
    /// `windows[s * windowsPerSlot + i]`, one per capsule segment, allocated the first
    /// time a slot needs that many (a system call; counted), dropped when a connection
    /// goes (a window is bound to its queue pair) and before it is released.
    private var windows: [MemoryWindow?]
    /// 0: whole-memory mode (no windows; guest memory carries remote access itself).
    private let windowsPerSlot: Int
    /// Windows bound in the send batch not yet posted, and their new keys: the device
    /// finds a window by its old key, so `bound(key:)` waits until the batch is posted.
    private var pendingBinds: [(window: MemoryWindow, key: UInt32)] = []

    /// Bytes per slot of the capsule buffer: a command with every segment
    /// this initiator asks for (`TargetConnector.wantedSegments`), 64-byte aligned.
    static let capsuleStride = (Wire.commandSize(segments: Int(TargetConnector.wantedSegments), inline: 0) + 63) & ~63

    /// Whether capsules built under `limits` fit a slot (a grant above what
    /// was asked is refused by the geometry check; this is the last line).
    static func capsuleFits(_ limits: CapsuleLimits) -> Bool { limits.capsuleBufferSize <= capsuleStride }

    init(index: Int, disk: RemoteBlockDevice, connection: any FabricLink, geometry: BlockGeometry, link: QueueLink<BlockGeometry>,
         logger: Logger) throws(InitiatorError) {
        self.index = index
        self.disk = disk
        self.link = link
        self.logger = logger
        counters = disk.counters
        slotCount = disk.config.queueDepth
        cq = connection.completions
        fabric = QueueConnection(link: link, first: connection)
        limits = CapsuleLimits(geometry: geometry, maxInlinePieces: TargetConnector.inlinePieces)
        blkLimits = RemoteBlockDevice.blkLimits(geometry, readOnly: disk.config.readOnly)
        credits = min(Int(geometry.queueDepth), slotCount)
        // Sized for the most segments this initiator ever asks for, not for
        // this first grant: a later connection may grant more (up to what was
        // asked), and its capsules must still fit their slot.
        capsuleStride = Self.capsuleStride
        guard Self.capsuleFits(limits) else {
            throw .geometry(target: "\(disk.activeTarget)", queue: index,
                            WireError("granted \(geometry.maxSegments) segments: capsule exceeds its \(Self.capsuleStride)-byte slot"))
        }
        do throws(FabricError) {
            capsules = try RegisteredBuffer(pd: connection.registrar, count: capsuleStride * slotCount, access: .localWrite)
            responses = try RegisteredBuffer(pd: connection.registrar, count: Wire.responseSize * slotCount, access: .localWrite)
        } catch {
            throw .fabric("ibv_reg_mr (queue \(index) capsule/response buffers)", error)
        }
        windowsPerSlot = disk.config.remoteAccess == .windows ? Int(TargetConnector.wantedWindowSegments) : 0
        windows = [MemoryWindow?](repeating: nil, count: slotCount * windowsPerSlot)
        // Room for every slot's SEND, or for one command's binds and SEND at least.
        sendBatch = SendBatch(capacity: slotCount + 2 * windowsPerSlot + 1, maxSegments: 1 + TargetConnector.inlinePieces)
        // A batch holds at most its capacity of binds: the list never grows on the request path.
        pendingBinds.reserveCapacity(sendBatch.capacity)
        recvBatch = RecvBatch(capacity: slotCount)
        slots = FixedArray(repeating: RequestSlot(), count: slotCount)
        fifo = FixedRing(capacity: slotCount)
        do throws(FabricError) { try postAllReceives() } catch { throw .fabric("ibv_post_recv (queue \(index))", error) }
    }

    /// The descriptors the worker sleeps on: the CQ's channel and the link's wake eventfd.
    var wakeDescriptors: [Int32] { [cq.wakeFD, link.workerWake.fd].compactMap { $0 } }

    // MARK: Requests (worker)

    /// Takes a popped request: parse, build the capsule, queue it for sending.
    func submit(_ req: VhostUserQueueRequest) {
        counters.bump(counters.requests)
        if fabric.hasPending { adopt() }   // parse with the newest geometry
        let chain = req.chain
        let head = Int(chain.head)
        guard head < slotCount, slots[head].state == .free else {
            // A head already in flight (a misbehaving driver) or beyond our slots.
            counters.bump(counters.ioErrors)
            req.complete(writtenLength: 0)
            return
        }
        let blk: BlkRequest
        do {
            blk = try BlkRequest.parse(chain, limits: blkLimits)
        } catch {
            if error == .missingStatus {
                counters.bump(counters.ioErrors)
                req.complete(writtenLength: 0)
            } else {
                let written = BlkRequest.writeStatus(error.status, to: chain)
                count(error.status)
                req.complete(writtenLength: written)
            }
            return
        }
        if failingFast { return finish(req, blk, .ioError) }
        // SAFETY: head < slotCount; the buffer holds slotCount strides.
        let buf = capsules.bytes.baseAddress! + head * capsuleStride
        switch CapsuleBuilder.build(blk, chain: chain, regions: disk.regions, limits: limits,
                                    tag: UInt32(head), into: buf) {
        case .complete(let status):
            finish(req, blk, status)
        case .send(let bytes, let pieces):
            slots[head] = RequestSlot(state: .queued, request: req, blk: blk, capsuleBytes: bytes, inlinePieces: pieces,
                                      startedAt: monotonicNanoseconds())
            fifo.push(head)
        }
    }

    /// Worker loop step: adopt a new connection, reap completions, send what
    /// is queued, check the loss timeout. Returns how much work it did.
    func poll() -> Int {
        var did = 0
        if !failingFast, link.detached.load(ordering: .relaxed) { failDetached(); did += 1 }
        if fabric.hasPending { adopt(); did += 1 }
        if fabric.lossSignalled {
            lose("the target disconnected")
            did += 1
        }
        did += reap()
        if let conn = connection {
            if !recvBatch.isEmpty {
                postedWorkRequests += recvBatch.count
                do { try conn.workQueue.post(recvBatch, costs: costs) } catch { lose("ibv_post_recv: \(error)") }
            }
            did += pump()
        } else if lostSince != 0, !failingFast {
            checkLossTimeout()
        }
        return did
    }

    /// Before the worker sleeps: drains the supervisor's wake if it was signalled, takes the
    /// completion channel's events, arms the CQ, then looks once more (a completion may have
    /// landed before arming). True: there is work, do not sleep.
    func prepareToSleep() -> Bool {
        guard link.armForSleep(cq, costs: costs) else { return true }
        return poll() > 0 || hasSignals
    }

    /// Whether a signal from the supervisor is waiting (checked before sleeping).
    var hasSignals: Bool {
        fabric.hasPending || fabric.lossSignalled
    }

    /// Drains the CQ; completes requests whose responses arrived. Also runs
    /// while disconnected: completions of dead connections (flushed work
    /// requests) are discarded, so they never crowd the CQ a new connection shares.
    private func reap() -> Int {
        var done = 0
        while true {
            let n: Int
            do { n = try cq.poll(into: completions) } catch { lose("ibv_poll_cq: \(error)"); break }
            if n == 0 {
                if done == 0 { costs.count(.emptyPolls) }
                break
            }
            for k in 0..<n {
                let c = completions[k]
                guard fabric.isCurrent(c.wrId), connection != nil else { continue }
                postedWorkRequests -= 1
                guard c.isSuccess else { lose("\(c.error)"); break }
                let kind = WorkID.kind(c.wrId)
                if kind == Self.invalidateKind {
                    if invalidated(slot: WorkID.index(c.wrId)) { done += 1 } else { break }
                    continue
                }
                guard kind == Self.receiveKind else { continue }   // a SEND or a bind went out
                let i = WorkID.index(c.wrId)
                if response(buffer: i, byteLength: Int(c.byteLength), invalidated: c.invalidatedKey) { done += 1 } else { break }
            }
        }
        return done
    }

    /// Handles the response in receive buffer `i` (`invalidated`: the window key its
    /// SEND_WITH_INV invalidated); false when the peer is broken.
    private func response(buffer i: Int, byteLength: Int, invalidated: UInt32?) -> Bool {
        guard i < slotCount else { lose("receive completion for unknown buffer \(i)"); return false }
        // SAFETY: i < slotCount; 16 bytes per buffer.
        let p = UnsafeRawPointer(responses.bytes.baseAddress! + i * Wire.responseSize)
        guard let r = ResponseCapsule.read(p, byteCount: byteLength), Int(r.tag) < slotCount,
              slots[Int(r.tag)].state == .inFlight else {
            counters.bump(counters.badResponses)
            lose("malformed response or response for a tag not in flight (peer broken)")
            return false
        }
        recvBatch.receive(wrId: wrID(i, receive: true),
                          local: responses.region.segment(offset: i * Wire.responseSize, length: Wire.responseSize))
        let tag = Int(r.tag)
        inFlight -= 1
        lostSince = 0       // the target answers again: the loss is over
        let status: VirtioBlk.Status = switch r.status {
        case .ok: .ok
        case .unsupported: .unsupported
        default: .ioError
        }
        let bound = slots[tag].windowsBound
        if bound > 0 {
            // No request completes while a window over its buffers is valid. The target
            // invalidates the first; a response that invalidated another key is a broken
            // (or hostile) peer. The rest are invalidated here, never the one the target
            // already did (a second invalidation of a window is an error).
            var first = 0
            if let invalidated {
                guard invalidated == windows[tag * windowsPerSlot]!.key else {
                    counters.bump(counters.badResponses)
                    lose("response for tag \(tag) invalidated key 0x\(String(invalidated, radix: 16)), not its window's (peer broken)")
                    return false
                }
                first = 1
            } else {
                counters.bump(counters.responsesWithoutInvalidation)
            }
            if first < bound {
                guard let conn = connection else { return false }
                if sendBatch.count + bound > sendBatch.capacity { _ = post(conn) }
                for w in first..<bound {
                    sendBatch.localInvalidate(wrId: fabric.workID(kind: Self.invalidateKind, index: tag),
                                              key: windows[tag * windowsPerSlot + w]!.key, signaled: w == bound - 1)
                }
                counters.bump(counters.windowsInvalidatedLocally, UInt64(bound - first))
                slots[tag].state = .invalidating
                slots[tag].status = status
                _ = post(conn)
                return true
            }
        }
        let slot = slots[tag]
        slots[tag] = RequestSlot()
        counters.latency.record(nanoseconds: monotonicNanoseconds() &- slot.startedAt)
        finish(slot.request!, slot.blk!, status)
        return true
    }

    /// The LOCAL_INV of slot `s`'s remaining windows completed: the request completes.
    private func invalidated(slot s: Int) -> Bool {
        guard s < slotCount, slots[s].state == .invalidating, let req = slots[s].request, let blk = slots[s].blk else {
            lose("invalidation completion for slot \(s), which is not invalidating")
            return false
        }
        let status = slots[s].status
        counters.latency.record(nanoseconds: monotonicNanoseconds() &- slots[s].startedAt)
        slots[s] = RequestSlot()
        finish(req, blk, status)
        return true
    }

    /// Binds one window per segment of slot `s`'s capsule (exactly its buffers, exactly
    /// the access its command needs), writes their keys into the capsule and asks the
    /// target to invalidate them. False: a buffer is no longer registered, or a window
    /// cannot be allocated; the request fails.
    private func bindWindows(_ s: Int) -> Bool {
        let base = capsules.bytes.baseAddress! + s * capsuleStride
        // SAFETY: the capsule was built in this slot by CapsuleBuilder: a 32-byte header and
        // `n` 16-byte segments, n ≤ the grant ≤ windowsPerSlot (the request asked for that many).
        let n = CommandWriter.segmentCount(base)
        slots[s].windowsBound = 0
        guard n > 0 else { return true }
        guard n <= windowsPerSlot else { return false }
        // READ and GET_ID: the target writes into the buffers; WRITE: it reads them.
        let access: AccessFlags = CommandWriter.opcode(base) == BlockOpcode.write.rawValue ? [.remoteRead] : [.remoteWrite]
        for i in 0..<n {
            var seg = CommandWriter.segment(base, i)
            guard let region = disk.regions.lookup(address: seg.address, length: UInt64(seg.length))?.region,
                  let window = window(s, i) else { return false }
            let key = window.nextKey
            sendBatch.bind(wrId: fabric.workID(kind: Self.bindKind, index: s), window: window, key: key, region: region,
                           address: seg.address, length: UInt64(seg.length), access: access)
            pendingBinds.append((window, key))
            seg.rkey = key
            CommandWriter.setSegment(base, i, seg)
        }
        CommandWriter.addFlags(base, .invalidate)
        slots[s].windowsBound = n
        counters.bump(counters.windowsBound, UInt64(n))
        return true
    }

    /// Slot `s`'s window `i`, allocated the first time it is needed.
    private func window(_ s: Int, _ i: Int) -> MemoryWindow? {
        let k = s * windowsPerSlot + i
        if let w = windows[k] { return w }
        guard let w = try? disk.pd.allocateWindow() else { return nil }
        counters.bump(counters.windowsAllocated)
        windows[k] = w
        return w
    }

    /// Drops every window (the connection they were bound on is going, or has gone into
    /// error): before the queue pair is released, which a bound window would hold up.
    private func dropWindows() {
        pendingBinds.removeAll(keepingCapacity: true)
        for k in windows.indices { windows[k] = nil }
        for s in 0..<slotCount { slots[s].windowsBound = 0 }
    }

    /// Sends queued capsules while credits last; posts them in one batch.
    private func pump() -> Int {
        guard let conn = connection else { return 0 }
        var sent = 0
        while inFlight < credits, let s = fifo.pop() {
            guard slots[s].state == .queued, let req = slots[s].request, let blk = slots[s].blk else { continue }
            if slots[s].inlinePieces > 0, !inlinePiecesRegistered(blk, req.chain) {
                // A region went away while the request was held.
                slots[s] = RequestSlot()
                finish(req, blk, .ioError)
                continue
            }
            if windowsPerSlot > 0 {
                if sendBatch.count + windowsPerSlot + 1 > sendBatch.capacity { _ = post(conn) }
                guard bindWindows(s) else {
                    slots[s] = RequestSlot()
                    finish(req, blk, .ioError)
                    continue
                }
            }
            sendBatch.send(wrId: wrID(s, receive: false),
                           local: capsules.region.segment(offset: s * capsuleStride, length: slots[s].capsuleBytes))
            if slots[s].inlinePieces > 0 {
                // Zero copy: the NIC gathers the guest's data pieces straight
                // from guest memory (the MR's iova is the guest address).
                var slice = blk.dataSlice(in: req.chain)
                while let piece = slice.next() {
                    let e = disk.regions.lookup(address: piece.guestAddr, length: UInt64(piece.length), hint: piece.region)!
                    sendBatch.appendSegment(ScatterGatherElement(address: piece.guestAddr, length: piece.length, lkey: e.lkey))
                }
                counters.bump(counters.inlineWrites)
            }
            slots[s].state = .inFlight
            inFlight += 1
            sent += 1
        }
        return sent + post(conn)
    }

    private func inlinePiecesRegistered(_ blk: BlkRequest, _ chain: Chain) -> Bool {
        var slice = blk.dataSlice(in: chain)
        while let piece = slice.next() {
            if disk.regions.lookup(address: piece.guestAddr, length: UInt64(piece.length), hint: piece.region) == nil { return false }
        }
        return true
    }

    private func post(_ conn: any FabricLink) -> Int {
        guard !sendBatch.isEmpty else { return 0 }
        let n = sendBatch.count
        postedWorkRequests += n
        do { try conn.workQueue.post(sendBatch, costs: costs) } catch { lose("ibv_post_send: \(error)"); return 0 }
        for b in pendingBinds { b.window.bound(key: b.key) }
        pendingBinds.removeAll(keepingCapacity: true)
        counters.bump(counters.commandsSent, UInt64(n))
        return 0
    }

    /// Writes the status byte (one byte, by the CPU: not payload) and completes.
    private func finish(_ req: VhostUserQueueRequest, _ blk: BlkRequest, _ status: VirtioBlk.Status) {
        blk.complete(req.chain, status: status)
        count(status)
        req.complete(writtenLength: blk.usedLength)
    }

    @inline(__always)
    private func count(_ status: VirtioBlk.Status) {
        counters.bump(counters.completed)
        if status == .ioError { counters.bump(counters.ioErrors) }
        if status == .unsupported { counters.bump(counters.unsupported) }
    }

    @inline(__always)
    private func wrID(_ i: Int, receive: Bool) -> UInt64 {
        fabric.workID(kind: receive ? Self.receiveKind : Self.sendKind, index: i)
    }

    private func postAllReceives() throws(FabricError) {
        guard let conn = connection else { return }
        recvBatch.reset()
        for i in 0..<slotCount {
            recvBatch.receive(wrId: wrID(i, receive: true),
                              local: responses.region.segment(offset: i * Wire.responseSize, length: Wire.responseSize))
        }
        postedWorkRequests = slotCount
        try conn.workQueue.post(recvBatch, costs: costs)
    }

    // MARK: Fabric loss and reconnect (worker; rare path: may log)

    /// The connection is unusable: hold every in-flight request (back to the
    /// FIFO, resubmitted after a reconnect) and ask the supervisor for a new one.
    func lose(_ reason: String) {
        guard connection != nil else { return }
        // Cut the old queue pair before its requests are held for resubmission:
        // from here on the target can no longer read or write guest memory
        // through it, so a late RDMA for the old command cannot land after
        // (or over) the resubmitted one. Its flushes are discarded (epoch).
        fabric.stopTraffic()
        dropWindows()
        var held = 0
        for s in 0..<slotCount where slots[s].state == .inFlight {
            slots[s].state = .queued
            fifo.push(s)
            held += 1
        }
        // Answered, but their windows' invalidation was cut off: the windows are gone with the
        // queue pair (dropped above), so they complete now with the target's answer.
        for s in 0..<slotCount where slots[s].state == .invalidating {
            let slot = slots[s]
            slots[s] = RequestSlot()
            if let req = slot.request, let blk = slot.blk { finish(req, blk, slot.status) }
        }
        inFlight = 0
        logger.warning("disk \(disk.config.socket) queue \(index): connection to \(disk.activeTarget) lost (\(reason)); holding \(fifo.count) request(s) (\(held) were in flight), reconnecting")
        dropConnection()
    }

    /// Lets go of a connection already moved to error: its work requests and
    /// completions belong to the old epoch from here on, the loss clock starts
    /// (if not running), and the supervisor is asked for a new one.
    private func dropConnection() {
        fabric.forget()
        postedWorkRequests = 0
        sendBatch.reset()
        recvBatch.reset()
        if lostSince == 0 { lostSince = monotonicNanoseconds() }
        counters.bump(counters.connectionsLost)
        fabric.requestReconnect()
    }

    /// Takes the supervisor's new connection and resubmits everything held.
    private func adopt() {
        guard let p = fabric.takePending() else { return }
        if link.detached.load(ordering: .relaxed) { return fabric.refuse(p) }
        let newLimits = CapsuleLimits(geometry: p.geometry, maxInlinePieces: TargetConnector.inlinePieces)
        guard Self.capsuleFits(newLimits) else {
            // A hostile or misconfigured target: never let capsules overrun their slots.
            logger.error("disk \(disk.config.socket) queue \(index): target \(disk.activeTarget) granted \(p.geometry.maxSegments) segments, more than a \(Self.capsuleStride)-byte capsule slot holds; connection refused")
            counters.bump(counters.badResponses)
            fabric.refuse(p)
            return
        }
        fabric.beginEpoch()
        _ = reap()          // discard what the old connection left in the shared CQ
        fabric.adopt(p)
        limits = newLimits
        blkLimits = RemoteBlockDevice.blkLimits(p.geometry, readOnly: disk.config.readOnly)
        credits = min(Int(p.geometry.queueDepth), slotCount)
        let lostFor = lostSince == 0 ? 0 : (monotonicNanoseconds() &- lostSince) / 1_000_000
        // The loss clock runs from the first loss until the target answers
        // (`response`), not until this adopt: a target that accepts and drops
        // every connection must still reach the loss timeout.
        if fifo.isEmpty { lostSince = 0 }
        failingFast = false
        do { try postAllReceives() } catch {
            lose("ibv_post_recv after reconnect: \(error)")
            return
        }
        counters.bump(counters.reconnects)
        counters.bump(counters.resubmitted, UInt64(fifo.count))
        disk.geometryAdopted(p.geometry, queue: index)
        logger.notice("disk \(disk.config.socket) queue \(index): reconnected to \(disk.activeTarget) after \(lostFor) ms; resubmitting \(fifo.count) held request(s)")
    }

    private func checkLossTimeout() {
        let now = monotonicNanoseconds()
        guard now &- lostSince >= disk.config.lossTimeoutNanoseconds else { return }
        let failed = failHeld(counters.failedAfterLossTimeout)
        logger.error("disk \(disk.config.socket) queue \(index): target \(disk.activeTarget) export \(disk.config.export) unreachable for \(disk.config.lossTimeoutNanoseconds / 1_000_000_000) s (loss timeout): failed \(failed) held request(s) with IOERR; new requests fail until it is back")
    }

    /// Fails every held request with IOERR (each counted in `counter` first, before the
    /// guest can see its completion) and every later one at once (`failingFast`).
    private func failHeld(_ counter: borrowing Atomic<UInt64>) -> Int {
        failingFast = true
        var failed = 0
        while let s = fifo.pop() {
            guard slots[s].state == .queued, let req = slots[s].request, let blk = slots[s].blk else { continue }
            slots[s] = RequestSlot()
            counters.bump(counter)
            finish(req, blk, .ioError)
            failed += 1
        }
        return failed
    }

    /// The disk was deleted with force (`RemoteBlockDevice.detach`): the connection is cut
    /// (`lose`: QP to error first, so no RDMA for a request lands after it completes),
    /// then every request fails with IOERR; the supervisor is stopped, so none reconnects.
    private func failDetached() {
        lose("the disk was deleted with force (control API)")
        let failed = failHeld(counters.failedDetached)
        logger.error("disk \(disk.config.socket) queue \(index): deleted with force: failed \(failed) held request(s) with IOERR; every new request fails at once")
    }

    // MARK: Control plane (parked worker)

    /// (Control, parked) The front-end went away: its requests are forgotten.
    /// Commands still at the target are cut off by dropping the connection
    /// (so no RDMA lands in memory about to be unmapped); a new one is made.
    func abandonAll() {
        if inFlight > 0 { lose("front-end disconnected with commands in flight") }
        for s in 0..<slotCount { slots[s] = RequestSlot() }
        fifo.removeAll()
        inFlight = 0
    }

    /// (Worker, parking) The drain ran out of time: cut the connection (QP
    /// to error, then reap until every posted work request has flushed, so
    /// the RNIC touches none of their guest buffers any more), fail every
    /// request held or in flight with IOERR, and never replay them: after the
    /// park the guest's memory may mean something else. A new connection is
    /// asked for as after any loss.
    func abortOutstanding() {
        if connection != nil {
            fabric.stopTraffic()
            let deadline = monotonicNanoseconds() &+ 1_000_000_000
            while postedWorkRequests > 0, monotonicNanoseconds() < deadline {
                guard let n = try? cq.poll(into: completions) else { break }
                for k in 0..<n where fabric.isCurrent(completions[k].wrId) {
                    postedWorkRequests -= 1
                }
                if n == 0 { sched_yield() }
            }
            if postedWorkRequests > 0 {
                logger.error("disk \(disk.config.socket) queue \(index): \(postedWorkRequests) work request(s) did not flush within 1 s of the QP error")
            }
            dropWindows()
            dropConnection()
        }
        var failed = 0
        for s in 0..<slotCount where slots[s].state != .free {
            let slot = slots[s]
            slots[s] = RequestSlot()
            guard let req = slot.request, let blk = slot.blk else { continue }
            counters.bump(counters.abortedByQuiesce)
            finish(req, blk, .ioError)
            failed += 1
        }
        fifo.removeAll()
        inFlight = 0
        logger.error("disk \(disk.config.socket) queue \(index): target \(disk.activeTarget) export \(disk.config.export) did not complete \(failed) request(s) before a stop, reset or memory change: connection cut, requests failed with IOERR (never replayed)")
    }

    /// (Control, after the worker stopped) Drops the connection for shutdown.
    func close() {
        dropWindows()
        fabric.close()
    }

    /// Requests held or waiting for a credit (tests, stats; worker or parked).
    var queuedCount: Int { fifo.count }
    var isConnected: Bool { connection != nil }
}
