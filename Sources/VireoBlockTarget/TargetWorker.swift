import Logging
import VireoFabric
import VireoSys
import VireoTargetCore
import VireoUring
#if canImport(Glibc)
import Glibc
#endif

/// A block data-path thread: one completion channel + CQ shared by all its
/// connections, one io_uring, and a table of the queues it serves. The thread,
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

    // Control-plane bookkeeping (touched only by the control thread).
    /// CQ entries not yet promised to a connection.
    package var completionBudgetLeft: Int
    /// io_uring entries not yet promised (one per request slot).
    package var ringBudgetLeft: Int
    package var queueCount = 0

    package init(index: Int, context: VerbsContext, cqCapacity: Int, ringEntries: Int, busyPoll: Bool,
         keepaliveNanoseconds: UInt64 = 5_000_000_000, peerTimeoutNanoseconds: UInt64 = 15_000_000_000,
         logger: Logger, retire: @escaping @Sendable (TargetQueue) -> Void) throws(FabricError) {
        self.keepaliveNanoseconds = keepaliveNanoseconds
        self.peerTimeoutNanoseconds = peerTimeoutNanoseconds
        self.index = index
        self.context = context
        channel = try CompletionChannel(context: context)
        cq = try CompletionQueue(context: context, capacity: cqCapacity, channel: channel)
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
        completionBudgetLeft = cqCapacity
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

    /// Lets every queue probe a silent idle peer or drop one that left its posted work unacknowledged.
    package func tick(now: UInt64) {
        for (_, q) in table.occupied {
            q.checkLiveness(now: now)
            if q.isDraining { noteDraining(q) }
        }
        if !draining.isEmpty { retireDrained() }
    }

    /// At stop: waits (up to 5 s) for io_uring operations still in flight, so no
    /// bounce buffer is released while the kernel may still write into it.
    package func finish() {
        let deadline = monotonicNanoseconds() &+ 5_000_000_000
        while table.occupied.contains(where: { $0.item.storageInFlight > 0 }) && monotonicNanoseconds() < deadline {
            guard let (ud, res) = ring.takeCompletion() else {
                usleep(1000)
                continue
            }
            guard let q = table.item(for: ud) else { continue }
            q.drop("target stopping", fault: .stopping)
            q.storageCompleted(WorkID.index(ud), result: res)
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
            guard let q = table.item(for: c.wrId) else { continue }
            q.completed(c)
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
        // One ibv_post_recv and one ibv_post_send per queue for everything this pass produced.
        for q in flushing {
            q.isOnFlushList = false
            if q.needsFlush { q.flushPosts() }
            if q.isDraining { noteDraining(q) }
        }
        flushing.removeAll(keepingCapacity: true)
        do { if try ring.submit() { costs.count(.uringEnters) } } catch { logger.error("worker \(index): \(error)") }
        if !draining.isEmpty { retireDrained() }
        return work
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
            table.remove(at: slot)
            if let fault = q.dropFault {
                counters.dropped(fault)
                logger.warning("dropping connection \(q.peerName): \(fault.name): \(q.dropReason ?? "")")
            } else {
                logger.info("\(q.peerName) disconnected")
            }
            retire(q)
        }
    }

    package func take(adopted: [TargetQueue], dropped: [TargetQueue]) {
        for q in adopted {
            guard let (slot, generation) = table.insert(q) else {
                q.drop("worker \(index) has no free queue slot", fault: .noQueueSlot)
                retire(q)
                continue
            }
            counters.accepted()
            q.install(index: slot, generation: generation, ring: ring, counters: counters, costs: costs, logger: logger,
                      liveness: PeerLiveness(keepaliveNanoseconds: keepaliveNanoseconds,
                                             timeoutNanoseconds: peerTimeoutNanoseconds, now: monotonicNanoseconds()))
            if q.isDraining { noteDraining(q) }
        }
        for q in dropped where table.holds(q, at: q.tableIndex) {
            q.drop("disconnected", fault: nil)
            noteDraining(q)
        }
        if !draining.isEmpty { retireDrained() }
    }
}
