import Synchronization
import Virtio
import VireoSys

/// Hot-path counters of one ring, read by statistics after the fact: the
/// worker owns them, so read them only while it is parked or joined.
public struct VhostUserVringCounters: Sendable, Equatable {
    public var requests: UInt64 = 0
    public var completions: UInt64 = 0
    public var badRequests: UInt64 = 0
    public var resubmitted: UInt64 = 0
    public var calls: UInt64 = 0
    public var staleCompletions: UInt64 = 0
    /// Times the driver broke the ring (e.g. made a head available again
    /// while it was still in flight): the ring stopped, err signalled.
    public var brokenByDriver: UInt64 = 0
    public init() {}
}

/// One virtqueue of a vhost-user device: its configuration from the control
/// plane (SET_VRING_*) and, while started, its runtime on a worker thread.
///
/// Split (`SplitQueue`) or, with VIRTIO_F_RING_PACKED, packed
/// (`PackedQueue`). With LOG_ALL both layouts log every ring write the
/// device makes (split: used elements, used.idx, avail_event; packed: used
/// descriptors and the device event suppression structure) and the bytes
/// each completion wrote. INFLIGHT_SHMFD tracks both layouts
/// (`InflightSplitQueue`, `InflightPackedQueue`): requests taken and not
/// completed when the back-end went away are resubmitted after a reconnect.
///
/// Threading: configuration fields are written by the control thread only
/// while the owning worker is paused (see `VhostUserWorker`), except `call`
/// and `err`, which have their own handshake (`VringEventSlot`); the runtime
/// fields are touched only by the worker. No locks.
public final class VhostUserVring: @unchecked Sendable {
    // SAFETY (Sendable): see the threading note above; the pause handshake
    // (acquire/release atomics) orders control writes before worker reads.

    /// Queue index.
    public let index: Int
    let maxSize: UInt16

    // Configuration (control thread, while paused).
    var size: UInt16 = 0
    var address: VhostUserVringAddress?
    /// SET_VRING_BASE value: split, the next avail index (bits 0-15);
    /// packed, avail slot | wrap << 15 and used slot | wrap << 15 in bits
    /// 16-31 (vhost-user.rst "Vring descriptor indices for packed virtqueues").
    var base: UInt32 = 0
    /// VIRTIO_F_RING_PACKED negotiated: the ring is a packed virtqueue (§2.8).
    var packed = false
    var kick: SharedEventFD?
    var kickNoFD = false
    /// Used-buffer notification fd (SET_VRING_CALL); swapped without a pause.
    let call = VringEventSlot()
    /// Error fd (SET_VRING_ERR); swapped without a pause.
    let err = VringEventSlot()
    /// SET_VRING_ENABLE state.
    var enabled = false
    /// Why the worker stopped this ring (the driver broke it), until the worker reports it.
    var stopNote: String?

    /// Stops the ring the driver broke: no more pops, err signalled, and the reason kept
    /// for the worker to report (once) with the peer's name.
    private func stopBroken(_ note: String) {
        started = false
        err.signal()
        if stopNote == nil { stopNote = note }
    }

    /// Set by the worker around a service round: each completion still publishes its used
    /// entry at once (inflight tracking stays per request), but the notification check and
    /// the call wait for `flushCalls()`, so a round that completes a batch calls at most once
    /// (with EVENT_IDX, `needsNotification` judges the whole batch's used range).
    var batchingCalls = false
    /// A completion in this round published used entries and the driver was not yet asked.
    private var callOwed = false
    /// Where the calls this ring signals are counted: its worker's costs (set when the worker is made).
    var costs = VhostUserVring.unassignedCosts
    private static let unassignedCosts = DataPathCosts()
    /// Kick received and rings resolved: the worker processes it.
    var started = false
    var eventIdx = false
    var rules = ChainRules()
    var log: DirtyLog?
    /// Split: where the used ring is in guest-physical memory (SET_VRING_ADDR
    /// `log_guest_addr`, given with the LOG flag).
    var logUsedGPA: UInt64?
    /// Packed: the guest-physical addresses of the descriptor ring and the
    /// device area, translated from the ring's front-end addresses at start.
    var logPackedGPAs: (descriptors: UInt64, deviceArea: UInt64)?
    /// Whether completions dirty-log the bytes they wrote into the chain's
    /// writable buffers (the ring's own writes are logged regardless).
    /// Only `VhostUserOptions.logsDeviceWrites` turns it off: a test switch.
    var logsDeviceWrites = true
    var inflight: InflightSplitQueue?
    /// The region the inflight views point into, kept mapped while this ring
    /// has them (the session may replace its own reference first).
    var inflightRegion: InflightRegion?
    /// Packed rings' inflight record (a view made at each kick; `start`
    /// recovers from it, which also rebuilds its private free list). Like
    /// the split record, its positions win over SET_VRING_BASE: QEMU frees
    /// the region when the device resets.
    var packedInflight: InflightPackedQueue?
    /// The inflight record is the back-end's own (`RestartRecord`): one that
    /// does not fit the ring is cleared and the ring starts afresh from
    /// SET_VRING_BASE, where a front-end's region fails the start.
    var inflightIsOwn = false
    /// (Worker; set by `start` while paused) The ring (re)started: the next
    /// service round signals the call once, whatever the notification
    /// suppression says. A back-end that died between publishing used
    /// entries and its deferred call left the driver with entries it was
    /// never told about; a restarted one cannot know, and a spurious
    /// interrupt finds nothing new (RingStartCallTests). Stays owed until a
    /// call eventfd exists (QEMU sets it after the kick).
    var startCallOwed = false
    /// Set by `start` when it cleared an own record, with the reason (the
    /// session logs and resets it).
    var recordDiscarded: String?
    var generation: UInt64 = 0

    /// The worker serving this ring (set when the session starts).
    weak var worker: VhostUserWorker?
    /// The device takes chains with `pull()` instead of the worker popping them.
    var pulledOnDemand = false

    // Runtime (worker thread).
    var queue: SplitQueue?
    var packedQueue: PackedQueue?
    var pool: [VhostUserQueueRequest] = []
    /// Requests handed out and not completed (worker; the park's drain waits for 0).
    var outstanding = 0
    /// Which heads are out with the device (one flag per descriptor).
    var headInUse: [Bool] = []
    /// Bumped when the pool is forgotten (`abandonOutstanding`): a request of
    /// an older pool completing later touches nothing.
    var poolEpoch: UInt64 = 0
    var inflightCounter: UInt64 = 1
    var resubmitHeads: [UInt16] = []
    /// Packed: chains to resubmit, in fetch order (head entry, descriptor copies).
    var resubmitPacked: [(entry: UInt16, descriptors: [PackedQueue.Descriptor])] = []
    var memory: GuestMemory = .empty
    public internal(set) var counters = VhostUserVringCounters()

    init(index: Int, maxSize: UInt16) {
        self.index = index
        self.maxSize = maxSize
    }

    /// Whether the worker should process this ring.
    var isRunning: Bool { started && enabled && (queue != nil || packedQueue != nil) }

    /// The running queue, split or packed.
    var deviceQueue: (any DeviceQueue)? { queue ?? packedQueue }

    /// The GET_VRING_BASE value of the running queue, else `base`.
    var currentBase: UInt32 { deviceQueue?.vringBase ?? base }

    /// (Control, paused) Resolves the rings and builds the queue runtime.
    func start(memory: GuestMemory) throws(VhostUserProtocolError) {
        guard let address, size > 0 else {
            throw VhostUserProtocolError(request: .setVringKick, .invalid("ring \(index) kicked before SET_VRING_NUM/ADDR"))
        }
        let addrs = RingAddresses(descriptors: address.descriptorTable, driverArea: address.availableRing,
                                  deviceArea: address.usedRing, space: .frontendVirtual)
        if packed {
            inflight = nil
            resubmitHeads = []
            resubmitPacked = []
            var p: PackedQueue
            do {
                p = try PackedQueue(size: size, addresses: addrs, memory: memory, eventIdx: eventIdx, rules: rules,
                                    availState: UInt16(truncatingIfNeeded: base),
                                    usedState: UInt16(truncatingIfNeeded: base >> 16))
                if let packedInflight {
                    // A used region (back-end restart) knows the positions
                    // better than SET_VRING_BASE: QEMU cannot ask a dead
                    // back-end for them and a packed ring keeps no used index.
                    var r: InflightPackedQueue.Recovery
                    do { r = try packedInflight.recover(queue: p) } catch {
                        guard inflightIsOwn else {
                            throw VhostUserProtocolError(request: .setVringKick, .invalid("ring \(index) inflight region: \(error)"))
                        }
                        recordDiscarded = "\(error)"
                        packedInflight.clear()
                        do { r = try packedInflight.recover(queue: p) } catch {
                            throw VhostUserProtocolError(request: .setVringKick, .invalid("ring \(index) restart record: \(error)"))
                        }
                    }
                    inflightCounter = r.nextCounter
                    resubmitPacked = r.chains
                    p = try PackedQueue(size: size, addresses: addrs, memory: memory, eventIdx: eventIdx, rules: rules,
                                        availState: r.availState, usedState: r.usedState)
                }
            } catch let e as VhostUserProtocolError {
                throw e
            } catch {
                throw VhostUserProtocolError(request: .setVringKick, .invalid("ring \(index) packed setup: \(error)"))
            }
            self.memory = memory
            logPackedGPAs = Self.packedLogAddresses(address, memory: memory)
            try preparePool()
            packedQueue = p
            started = true
            startCallOwed = true
            return
        }
        var q: SplitQueue
        do {
            q = try SplitQueue(size: size, addresses: addrs, memory: memory, eventIdx: eventIdx, rules: rules,
                               lastAvailIdx: UInt16(truncatingIfNeeded: base), usedIdx: nil)
        } catch {
            throw VhostUserProtocolError(request: .setVringKick, .invalid("ring \(index) addresses: \(error)"))
        }
        resubmitHeads = []
        if let inflight {
            if inflightIsOwn, let why = Self.ownRecordMismatch(inflight, queue: q) {
                recordDiscarded = why
                inflight.clear()
            }
            // An own record left by this ring knows the position even with
            // nothing in flight: its back-end may have published used entries
            // after the front-end read used.idx for SET_VRING_BASE (buffers a
            // closing connection gave back).
            var resumeFromRecord = inflightIsOwn && inflight.version != 0
            var (heads, next) = inflight.recover(ringUsedIndex: q.usedIdx)
            if inflightIsOwn, let why = Self.ownRecordMismatch(heads: heads, queue: q) {
                recordDiscarded = why
                inflight.clear()
                (heads, next) = inflight.recover(ringUsedIndex: q.usedIdx)
                resumeFromRecord = false
            }
            inflightCounter = next
            if !heads.isEmpty || resumeFromRecord {
                // libvhost-user: everything between used.idx and the heads still
                // in flight was fetched; resume fetching after them.
                let resume = q.usedIdx &+ UInt16(truncatingIfNeeded: heads.count)
                do {
                    q = try SplitQueue(size: size, addresses: addrs, memory: memory, eventIdx: eventIdx, rules: rules,
                                       lastAvailIdx: resume, usedIdx: q.usedIdx)
                } catch {
                    throw VhostUserProtocolError(request: .setVringKick, .invalid("ring \(index) addresses: \(error)"))
                }
                resubmitHeads = heads
            }
        }
        self.memory = memory
        try preparePool()
        queue = q
        started = true
        startCallOwed = true
    }

    /// The guest-physical addresses a packed ring's writes are logged at
    /// (nil when either is outside the memory table: the queue setup fails then anyway).
    private static func packedLogAddresses(_ a: VhostUserVringAddress, memory: GuestMemory) -> (descriptors: UInt64, deviceArea: UInt64)? {
        guard let d = memory.guestPhysAddr(userAddr: a.descriptorTable),
              let e = memory.guestPhysAddr(userAddr: a.usedRing) else { return nil }
        return (d, e)
    }

    /// (Control, paused) One request per descriptor, allocated up front.
    /// A new pool (a new ring size) only with nothing out: the old requests
    /// would otherwise complete into it and break the accounting.
    private func preparePool() throws(VhostUserProtocolError) {
        if pool.count + outstanding != Int(size) || pool.first.map({ $0.chain.capacity < Int(size) }) == true {
            guard outstanding == 0 else {
                throw VhostUserProtocolError(request: .setVringKick, .invalid(
                    "ring \(index) restarted with size \(size) while \(outstanding) request(s) of the old ring are still out"))
            }
            pool = (0..<Int(size)).map { _ in VhostUserQueueRequest(vring: self, chainCapacity: size) }
            for r in pool { r.poolEpoch = poolEpoch }
        }
        pool.reserveCapacity(Int(size))
        if outstanding == 0 || headInUse.count != Int(size) { headInUse = [Bool](repeating: false, count: Int(size)) }
    }

    /// (Control, paused) Stops the ring and returns the next avail index (GET_VRING_BASE).
    func stop() -> UInt32 {
        base = currentBase
        queue = nil
        packedQueue = nil
        started = false
        kick = nil
        kickNoFD = false
        resubmitHeads = []
        resubmitPacked = []
        return base
    }

    /// (Control, paused) Forgets requests out with the device (connection gone).
    func abandonOutstanding() {
        poolEpoch &+= 1
        outstanding = 0
        pool = []
        headInUse = []
    }

    /// (Control, paused) Memory table changed: re-resolve the rings.
    func replaceMemory(_ newMemory: GuestMemory) throws(VhostUserProtocolError) {
        memory = newMemory
        guard let q = deviceQueue else { return }
        if packed, let address { logPackedGPAs = Self.packedLogAddresses(address, memory: newMemory) }
        do {
            try q.replaceMemory(newMemory)
        } catch {
            queue = nil
            packedQueue = nil
            started = false
            throw VhostUserProtocolError(request: .setMemTable, .invalid("ring \(index) no longer mapped: \(error)"))
        }
    }

    // MARK: Worker side

    /// Takes up to `budget` requests and hands them to `device`. Returns how many.
    @inline(__always)
    func process(device: VhostUserDevice, budget: Int) -> Int {
        if let q = queue {
            var n = 0
            if !resubmitHeads.isEmpty { n += resubmit(device: device, queue: q) }
            return n + process(device: device, budget: budget - n, queue: q)
        }
        if let p = packedQueue {
            var n = 0
            if !resubmitPacked.isEmpty { n += resubmit(device: device, queue: p) }
            return n + process(device: device, budget: budget - n, queue: p)
        }
        return 0
    }

    /// Pops one chain for the device without calling `handle` (pulled queues).
    func pull() -> VhostUserQueueRequest? {
        guard isRunning else { return nil }
        if let q = queue { return pull(queue: q) }
        if let p = packedQueue { return pull(queue: p) }
        return nil
    }

    /// Publishes the used element for `req` (see `VhostUserQueueRequest.complete`).
    func complete(_ req: VhostUserQueueRequest, writtenLength: UInt32) {
        guard req.isOutstanding, req.poolEpoch == poolEpoch else {
            counters.staleCompletions += 1
            return
        }
        let current = req.generation == generation
        if current, let q = queue {
            complete(req, writtenLength: writtenLength, queue: q)
        } else if current, let p = packedQueue {
            complete(req, writtenLength: writtenLength, queue: p)
        } else {
            // The ring was stopped or reset since the request was handed out:
            // counted back (the drain waits for 0), never published.
            let h = Int(req.chain.head)
            if current, h < headInUse.count { headInUse[h] = false }
            req.isOutstanding = false
            outstanding -= 1
            counters.staleCompletions += 1
            pool.append(req)
        }
    }

    // Generic over the ring layout: specialized per queue type, no existential
    // on the hot path.

    @inline(__always)
    private func process<Q: VringQueue>(device: VhostUserDevice, budget: Int, queue q: Q) -> Int {
        var n = 0
        while n < budget, let req = pool.popLast() {
            let got: Bool
            do {
                got = try q.popAvail(into: req.chain)
            } catch {
                switch error {
                case .badRequest:
                    guard headIsFree(req) else { pool.append(req); return n }
                    counters.badRequests += 1
                    hand(req, to: nil, queue: q)
                    complete(req, writtenLength: 0, queue: q)
                    n += 1
                    continue
                case .queueBroken(let why):
                    pool.append(req)
                    stopBroken("the driver broke the ring (\(why))")
                    return n
                }
            }
            guard got else { pool.append(req); break }
            guard headIsFree(req) else { pool.append(req); return n }
            q.logAvailEvent(self)
            hand(req, to: device, queue: q)
            n += 1
        }
        return n
    }

    private func pull<Q: VringQueue>(queue q: Q) -> VhostUserQueueRequest? {
        while let req = pool.popLast() {
            do {
                guard try q.popAvail(into: req.chain) else { pool.append(req); return nil }
            } catch {
                if case .badRequest = error {
                    guard headIsFree(req) else { pool.append(req); return nil }
                    counters.badRequests += 1
                    hand(req, to: nil, queue: q)
                    complete(req, writtenLength: 0, queue: q)
                    continue
                }
                pool.append(req)
                stopBroken("the driver broke the ring (\(error))")
                return nil
            }
            guard headIsFree(req) else { pool.append(req); return nil }
            hand(req, to: nil, queue: q)
            return req
        }
        return nil
    }

    /// virtio 1.x §2.7.13 / §2.8.21: the driver must not make a buffer
    /// available again while the device still owns it. One that does broke
    /// the ring: stop it (as for any broken ring: no more pops, err
    /// signalled) without touching the original request, whose completion
    /// and inflight entry stay intact. A packed buffer id of `size` or more
    /// (one per descriptor is all a driver needs) cannot be tracked and
    /// breaks the ring the same way.
    @inline(__always)
    func headIsFree(_ req: VhostUserQueueRequest) -> Bool {
        let h = Int(req.chain.head)
        if h < headInUse.count, !headInUse[h] { return true }
        counters.brokenByDriver += 1
        stopBroken(h < headInUse.count
            ? "the driver made head \(h) available again while it was in flight (virtio §2.7.13, §2.8.21)"
            : "the driver used buffer id \(h), not below the ring size \(headInUse.count)")
        return false
    }

    @inline(__always)
    private func hand<Q: VringQueue>(_ req: VhostUserQueueRequest, to device: VhostUserDevice?, queue q: Q) {
        headInUse[Int(req.chain.head)] = true    // < size: checked by headIsFree
        q.popped(self, req)
        inflightCounter &+= 1
        req.generation = generation
        req.isOutstanding = true
        outstanding += 1
        counters.requests += 1
        device?.handle(req)
    }

    @inline(__always)
    private func complete<Q: VringQueue>(_ req: VhostUserQueueRequest, writtenLength: UInt32, queue q: Q) {
        // Checked by the callers: outstanding, this pool, this generation.
        let head = req.chain.head
        headInUse[Int(head)] = false
        let length = min(writtenLength, req.chain.writableBytes)
        if let log, logsDeviceWrites {
            var remaining = length
            for s in req.chain.writableSegments where remaining > 0 {
                let l = min(remaining, s.length)
                log.logWrite(gpa: s.guestAddr, length: UInt64(l))
                remaining -= l
            }
        }
        q.willPublishUsed(self, req)
        q.pushUsed(req.chain.token, length: length)
        q.usedPublished(self, req)
        req.isOutstanding = false
        outstanding -= 1
        counters.completions += 1
        pool.append(req)
        if batchingCalls {
            callOwed = true
        } else if q.needsNotification() {
            signalCall()
        }
    }

    /// Signals the call eventfd (used buffers to see) and counts it.
    @inline(__always)
    @discardableResult
    private func signalCall() -> Bool {
        guard call.signal() else { return false }
        counters.calls += 1
        costs.count(.eventfdWrites)
        return true
    }

    /// Ends a batched service round: stops deferring, and signals the call if the used
    /// entries this round published need a notification (virtio 1.x §2.7.7).
    @inline(__always)
    func flushCalls() {
        batchingCalls = false
        if startCallOwed, started, signalCall() {
            startCallOwed = false
            callOwed = false     // this call covers the round's completions too
            return
        }
        guard callOwed else { return }
        callOwed = false
        let notify: Bool
        if let q = queue { notify = q.needsNotification() } else if let p = packedQueue { notify = p.needsNotification() } else {
            return
        }
        if notify { signalCall() }
    }
}
