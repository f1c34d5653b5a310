import Logging
import VireoFabric
import VireoRBD
import VireoSys
import VireoTargetCore
import VireoUring
#if canImport(Glibc)
import Glibc
#endif

/// A block data-path thread: one completion channel + CQ shared by all its
/// connections, one io_uring, one shared receive queue with its pool of
/// receive buffers (so receive memory does not grow with connections), and a
/// table of the queues it serves. A shared receive's completion names its
/// connection by queue-pair number; the worker hands it to that queue. A queue
/// pair can receive as soon as it is accepted, before the worker adopts its queue
/// (an initiator's hello often arrives first): such a receive is held, one per queue
/// pair, bounded in number and time, until its queue is adopted, then served; one no
/// queue claims is given back and counted (`strayReceives`). The thread,
/// the hand-off and the spin → arm → sleep loop are `EndpointWorker`'s; this is
/// the engine it runs: poll the CQ and the ring, process, submit; when asleep
/// it wakes on the channel fd, the ring's eventfd and the hand-off. Nothing on
/// the per-command path allocates, locks or logs.
package final class TargetWorker: EndpointEngine, @unchecked Sendable {
    // SAFETY: the data-path state is touched only by the worker thread (through
    // `EndpointWorker`, which owns the hand-off); the budgets below belong to the
    // control thread.
    package typealias Connection = TargetQueue
    package let index: Int
    let context: VerbsContext
    let channel: CompletionChannel
    package let cq: CompletionQueue
    /// The shared receive queue its connections' queue pairs are created on (nil: each posts its own).
    package let sharedReceiveQueue: SharedReceiveQueue?
    /// The buffers posted on it (nil with it).
    package let sharedReceives: ReceivePool?
    /// Table slot by queue-pair number, for the queues on the shared receive queue.
    private var slotByQueuePair: [UInt32: Int] = [:]
    /// Shared receives of queue pairs not in the table yet, oldest first.
    private var unclaimed = FixedRing<UnclaimedReceive>(capacity: TargetWorker.maxUnclaimed)
    /// Most shared receives held for queues not yet adopted (an honest initiator sends only its hello first).
    static let maxUnclaimed = 256
    /// How long such a receive waits for its queue (accept to adoption takes milliseconds).
    static let unclaimedNanoseconds: UInt64 = 10_000_000_000
    let ring: IOUring
    package let counters = TargetCounters()
    /// What this thread spends on system calls, sleeps and empty polls.
    package let costs = DataPathCosts()
    let logger: Logger
    private let completions = CompletionBuffer(capacity: 64)
    private let loop: EndpointWorker<TargetWorker>
    /// Peer liveness: probe after this much idle silence, drop after this much silence with work posted.
    private let keepaliveNanoseconds: UInt64
    private let peerTimeoutNanoseconds: UInt64
    /// Called (on the worker thread) with a queue it has retired; the control plane releases it.
    private let retire: @Sendable (TargetQueue) -> Void

    /// Queue table: the slot and its generation go in every work id.
    package static let maxQueues = 1024
    private var table = ConnectionTable<TargetQueue>(capacity: TargetWorker.maxQueues)
    private var draining: [Int] = []
    /// Queues with memory-export zeroing in progress: one chunk each per loop turn.
    private var zeroing: [TargetQueue] = []
    /// Queues with batched work requests to post at the end of this pass.
    private var flushing: [TargetQueue] = []
    /// RBD images pinned here with connections on this worker, and how many each: their
    /// completions are announced on the ring's eventfd and taken by `pollImages()`.
    private var images: [(image: RBDImage, queues: Int)] = []
    private let imageCompletions = RBDCompletions()

    // Control-plane bookkeeping (touched only by the control thread).
    /// CQ entries not yet promised to a connection.
    package var completionBudgetLeft: Int
    /// io_uring entries not yet promised (one per request slot).
    package var ringBudgetLeft: Int
    package var queueCount = 0

    /// `sharedReceives`: buffers and bytes per buffer of the worker's shared receive pool, registered
    /// with the device's process-wide PD (the one its connections use); nil: none.
    package init(index: Int, context: VerbsContext, cqCapacity: Int, ringEntries: Int, busyPoll: Bool,
         sharedReceives: (count: Int, bufferSize: Int)? = nil,
         keepaliveNanoseconds: UInt64 = 5_000_000_000, peerTimeoutNanoseconds: UInt64 = 15_000_000_000,
         logger: Logger, retire: @escaping @Sendable (TargetQueue) -> Void) throws(FabricError) {
        self.keepaliveNanoseconds = keepaliveNanoseconds
        self.peerTimeoutNanoseconds = peerTimeoutNanoseconds
        self.index = index
        self.context = context
        channel = try CompletionChannel(context: context)
        cq = try CompletionQueue(context: context, capacity: cqCapacity, channel: channel)
        // A shared pool the device or the memlock limit refuses: each connection posts its own.
        var made: (SharedReceiveQueue, ReceivePool)?
        if let shared = sharedReceives {
            do {
                guard shared.count < cqCapacity else {
                    throw FabricError.invalidArgument(call: "shared receives", "\(shared.count) buffers do not leave room in a CQ of \(cqCapacity)")
                }
                let pd = try ProtectionDomain.shared(for: context)
                let srq = try SharedReceiveQueue(pd: pd, depth: shared.count)
                let pool = try ReceivePool(registrar: pd, count: shared.count, bufferSize: shared.bufferSize, poster: srq,
                                           shared: true)
                pool.fill()
                try pool.flush(costs: costs)
                made = (srq, pool)
            } catch {
                logger.warning("worker \(index): no shared receive queue (\(error)); each block connection posts receives of its own")
            }
        }
        sharedReceiveQueue = made?.0
        self.sharedReceives = made?.1
        if made != nil { slotByQueuePair.reserveCapacity(Self.maxQueues) }
        do {
            ring = try IOUring(entries: ringEntries)
            // One fixed-buffer slot per queue-table slot: each file or device connection's bounce
            // buffers (a kernel without sparse buffer tables serves them unregistered).
            try? ring.registerFixedBufferSlots(Self.maxQueues)
            loop = try EndpointWorker(name: "vireo-w\(index)", busyPoll: busyPoll,
                                      tickNanoseconds: keepaliveNanoseconds / 2, fds: [channel.fd, ring.eventFD.rawValue],
                                      costs: costs)
        } catch {
            throw .call(error)
        }
        self.logger = logger
        self.retire = retire
        // Every posted shared receive can complete at once; the rest is promised per connection.
        completionBudgetLeft = cqCapacity - (sharedReceives?.count ?? 0)
        ringBudgetLeft = ringEntries
        draining.reserveCapacity(Self.maxQueues)
        zeroing.reserveCapacity(Self.maxQueues)
        flushing.reserveCapacity(Self.maxQueues)
    }

    /// Starts the thread.
    package func start() throws(SystemError) { try loop.start(self, logger: logger) }

    /// Hands a connected queue to this worker (control plane).
    package func adopt(_ q: TargetQueue) { loop.adopt(q) }

    /// Asks the worker to drop `q` (the peer disconnected); it retires it once its storage I/O is done.
    package func requestDrop(_ q: TargetQueue) { loop.requestDrop(q) }

    /// Stops the thread and returns every queue it still held (for the control plane to release).
    package func stop() -> [TargetQueue] {
        let notTaken = loop.stop()
        return table.removeAll() + notTaken
    }

    // MARK: the engine

    package func arm() {
        costs.count(.completionArms)
        do { try cq.requestNotification() } catch { logger.error("worker \(index): \(error)") }
    }

    /// fds: 0 the completion channel, 1 the ring's eventfd.
    package func woke(isReady: (Int) -> Bool) {
        if isReady(0) {
            do { costs.count(.channelReads, UInt64(try cq.takeChannelEvents())) } catch { logger.error("worker \(index): \(error)") }
        }
        if isReady(1) {
            _ = ring.eventFD.drain()
            costs.count(.eventfdReads)
        }
    }

    /// The fd librbd announces an RBD image's completions on, for images pinned here
    /// (the io_uring eventfd the loop already sleeps on).
    package var storageEventFD: Int32 { ring.eventFD.rawValue }

    /// Lets every queue probe a silent idle peer or drop one that left its posted work
    /// unacknowledged, and start again RBD operations the cluster failed.
    package func tick(now: UInt64) {
        expireUnclaimed(now: now)
        for (_, q) in table.occupied {
            q.retryClusterOperations()
            noteFlush(q)
            q.checkLiveness(now: now)
            if q.isDraining { noteDraining(q) }
        }
        if !draining.isEmpty { retireDrained() }
        flushSharedReceives()
    }

    /// At stop: waits (up to 5 s) for io_uring operations still in flight, so no
    /// bounce buffer is released while the kernel may still write into it.
    package func finish() {
        let deadline = monotonicNanoseconds() &+ 5_000_000_000
        for (_, q) in table.occupied { q.drop("target stopping", fault: .stopping) }
        while table.occupied.contains(where: { $0.item.storageInFlight > 0 }) && monotonicNanoseconds() < deadline {
            if pollImages() > 0 { continue }
            guard let (ud, res) = ring.takeCompletion() else {
                usleep(1000)
                continue
            }
            table.item(for: ud)?.storageCompleted(WorkID.index(ud), result: res)
        }
    }

    /// One pass over the CQ and the ring; returns how many completions it handled.
    @inline(__always)
    package func pollOnce(beforeSleep: Bool) -> Int {
        var work = 0
        let n: Int
        do { n = try cq.poll(into: completions) } catch {
            logger.error("worker \(index): \(error)")
            return 0
        }
        if n == 0 { costs.count(.emptyPolls) }
        for i in 0..<n {
            let c = completions[i]
            let q: TargetQueue
            if WorkID.kind(c.wrId) == WorkID.sharedReceive, let pool = sharedReceives {
                let buffer = WorkID.index(c.wrId)  // < pool.count: ids the pool made
                pool.took(buffer)
                guard let slot = slotByQueuePair[c.qpNumber], let found = table[slot] else {
                    holdUnclaimed(c, buffer: buffer, pool: pool)
                    continue
                }
                q = found
                q.sharedReceiveCompleted(c, buffer: buffer)
            } else {
                guard let found = table.item(for: c.wrId) else { continue }
                q = found
                q.completed(c)
            }
            noteFlush(q)
            if q.isDraining { noteDraining(q) }
            if q.hasZeroingWork && !q.isOnZeroingList {
                q.isOnZeroingList = true
                zeroing.append(q)
            }
        }
        work += n
        if !zeroing.isEmpty { work += stepZeroing() }
        while let (ud, res) = ring.takeCompletion() {
            work += 1
            guard let q = table.item(for: ud) else { continue }
            q.storageCompleted(WorkID.index(ud), result: res)
            noteFlush(q)
            if q.isDraining { noteDraining(q) }
        }
        if !images.isEmpty { work += pollImages() }
        postBatched()
        do { if try ring.submit() { costs.count(.uringEnters) } } catch { logger.error("worker \(index): \(error)") }
        if !draining.isEmpty { retireDrained() }
        return work
    }

    /// Takes the completed operations of every RBD image pinned here and hands each to its
    /// queue (by its tag, a work id like io_uring's user data). Returns how many.
    @inline(__always)
    private func pollImages() -> Int {
        var work = 0
        for i in images.indices {
            while true {
                let n = images[i].image.poll(into: imageCompletions)
                for k in 0..<n {
                    let ud = imageCompletions.tag(k)
                    guard let q = table.item(for: ud) else { continue }
                    q.storageCompleted(WorkID.index(ud), result: Int32(clamping: imageCompletions.result(k)))
                    noteFlush(q)
                    if q.isDraining { noteDraining(q) }
                }
                work += n
                if n < imageCompletions.capacity { break }
            }
        }
        return work
    }

    /// Counts a queue of an RBD export in (adopted) or out (retired): its image is polled
    /// while any is here.
    private func countImage(of q: TargetQueue, _ delta: Int) {
        guard let image = q.store.image else { return }
        if let i = images.firstIndex(where: { $0.image === image }) {
            images[i].queues += delta
            if images[i].queues <= 0 { images.remove(at: i) }
        } else if delta > 0 {
            images.append((image, delta))
        }
    }

    /// Posts what the pass batched: one ibv_post_srq_recv for the given-back shared receives,
    /// before any response leaves; then one ibv_post_recv and one ibv_post_send per queue.
    @inline(__always)
    private func postBatched() {
        flushSharedReceives()
        for q in flushing {
            q.isOnFlushList = false
            if q.needsFlush { q.flushPosts() }
            if q.isDraining { noteDraining(q) }
        }
        flushing.removeAll(keepingCapacity: true)
    }

    /// A shared receive of a queue pair not in the table: accepted but not adopted yet (held
    /// for its queue), or gone (its queue retired). A failed receive, or one beyond the bound,
    /// is given back: the oldest held goes first.
    private func holdUnclaimed(_ c: Completion, buffer: Int, pool: ReceivePool) {
        guard c.isSuccess else {
            pool.giveBack(buffer)
            return
        }
        // An initiator sends only its hello before the handshake result, which needs its queue:
        // one message per queue pair is held, so no peer can push out the others' hellos.
        for i in 0..<unclaimed.count where unclaimed[i].queuePair == c.qpNumber {
            pool.giveBack(buffer)
            counters.strayReceive()
            return
        }
        if unclaimed.isFull, let oldest = unclaimed.pop() {
            pool.giveBack(oldest.buffer)
            counters.strayReceive()
        }
        unclaimed.push(UnclaimedReceive(queuePair: c.qpNumber, buffer: buffer, byteCount: Int(c.byteLength),
                                        since: monotonicNanoseconds()))
    }

    /// Hands `q` (just adopted) the receives its queue pair got before, in arrival order.
    private func claimUnclaimed(_ q: TargetQueue) {
        guard !unclaimed.isEmpty else { return }
        for _ in 0..<unclaimed.count {
            let u = unclaimed.pop()!
            if u.queuePair == q.queuePairNumber { q.sharedReceived(u.buffer, byteCount: u.byteCount) } else { unclaimed.push(u) }
        }
        noteFlush(q)
        if q.isDraining { noteDraining(q) }
    }

    /// Gives back held receives no queue claimed in time.
    private func expireUnclaimed(now: UInt64) {
        guard let pool = sharedReceives else { return }
        while let u = unclaimed.peek(), now &- u.since > Self.unclaimedNanoseconds {
            _ = unclaimed.pop()
            pool.giveBack(u.buffer)
            counters.strayReceive()
        }
    }

    /// Posts the shared pool's given-back buffers (one call). A failure loses them from the pool
    /// (logged: the device refused its own SRQ, which no peer can cause).
    @inline(__always)
    private func flushSharedReceives() {
        guard let pool = sharedReceives, pool.needsFlush else { return }
        do { try pool.flush(costs: costs) } catch { logger.error("worker \(index): shared receives: \(error)") }
    }

    /// One bounded chunk of zeroing for each queue that has some; returns how many queues still have work.
    private func stepZeroing() -> Int {
        var i = 0
        while i < zeroing.count {
            let q = zeroing[i]
            let more = q.stepZeroing()
            noteFlush(q)
            if more {
                i += 1
            } else {
                q.isOnZeroingList = false
                zeroing.swapAt(i, zeroing.count - 1)
                zeroing.removeLast()
            }
            if q.isDraining { noteDraining(q) }
        }
        return zeroing.count
    }

    @inline(__always)
    private func noteFlush(_ q: TargetQueue) {
        if q.needsFlush && !q.isOnFlushList {
            q.isOnFlushList = true
            flushing.append(q)
        }
    }

    private func noteDraining(_ q: TargetQueue) {
        if !draining.contains(q.tableIndex) { draining.append(q.tableIndex) }
    }

    /// Retires draining queues whose storage I/O has finished: out of the table, to the control plane.
    private func retireDrained() {
        var i = 0
        while i < draining.count {
            let slot = draining[i]
            guard let q = table[slot] else { draining.remove(at: i); continue }
            if q.storageInFlight > 0 { i += 1; continue }
            draining.remove(at: i)
            q.unregisterFixedBuffer()
            q.returnSharedReceives()
            if q.usesSharedReceives { slotByQueuePair[q.queuePairNumber] = nil }
            countImage(of: q, -1)
            table.remove(at: slot)
            if let fault = q.dropFault {
                counters.dropped(fault)
                logger.warning("dropping connection \(q.peerName): \(fault.name): \(q.dropReason ?? "")")
            } else {
                logger.info("\(q.peerName) disconnected")
            }
            retire(q)
        }
        flushSharedReceives()
    }

    package func take(adopted: [TargetQueue], dropped: [TargetQueue]) {
        for q in adopted {
            guard let (slot, generation) = table.insert(q) else {
                q.drop("worker \(index) has no free queue slot", fault: .noQueueSlot)
                retire(q)
                continue
            }
            counters.accepted()
            countImage(of: q, 1)
            if q.usesSharedReceives { slotByQueuePair[q.queuePairNumber] = slot }
            q.install(index: slot, generation: generation, ring: ring, counters: counters, costs: costs, logger: logger,
                      liveness: PeerLiveness(keepaliveNanoseconds: keepaliveNanoseconds,
                                             timeoutNanoseconds: peerTimeoutNanoseconds, now: monotonicNanoseconds()))
            if q.usesSharedReceives { claimUnclaimed(q) }
            if q.isDraining { noteDraining(q) }
        }
        for q in dropped where table.holds(q, at: q.tableIndex) {
            q.drop("disconnected", fault: nil)
            noteDraining(q)
        }
        postBatched()
        if !draining.isEmpty { retireDrained() }
    }
}

/// A shared receive held for a queue pair the worker has not adopted yet.
struct UnclaimedReceive {
    var queuePair: UInt32
    var buffer: Int
    var byteCount: Int
    /// When it was held (monotonic nanoseconds).
    var since: UInt64
}
