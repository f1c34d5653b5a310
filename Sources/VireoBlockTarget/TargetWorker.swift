import CVireoSys
import Logging
import VireoFabric
import VireoSys
import VireoTargetCore
#if canImport(Glibc)
import Glibc
#endif

/// A data-path thread: one completion channel + CQ shared by all its
/// connections, one io_uring, and a table of the queues it serves.
///
/// Loop: poll the CQ and the ring, process, submit; when idle for a while, arm
/// the CQ and sleep on the channel fd, the ring's eventfd and a wake eventfd
/// (new connections, stop). `busyPoll` never sleeps. Nothing on the per-command
/// path allocates, locks or logs.
package final class TargetWorker: @unchecked Sendable {
    // SAFETY: the data-path state is touched only by the worker thread; the
    // hand-off list is guarded by `lock`; `stopFlag`/`handoffHint` are atomics.
    package let index: Int
    let context: VerbsContext
    let channel: CompletionChannel
    package let cq: CompletionQueue
    let ring: IOUring
    package let counters = TargetCounters()
    let logger: Logger
    private let wake: EventFD
    private let completions = CompletionBuffer(capacity: 64)
    private let poller = Poller(capacity: 3)
    private let busyPoll: Bool
    /// Idle loop turns before sleeping.
    private let spinBudget: Int
    /// Peer liveness: probe after this much idle silence, drop after this much silence with work posted.
    private let keepaliveNanoseconds: UInt64
    private let peerTimeoutNanoseconds: UInt64
    /// Nanoseconds between liveness ticks, and the last tick.
    private let tickNanoseconds: UInt64
    private var lastTick: UInt64 = 0
    /// Called (on the worker thread) with a queue it has retired; the control plane releases it.
    private let retire: @Sendable (TargetQueue) -> Void

    /// Queue table: index in work ids; generations tell stale completions apart.
    package static let maxQueues = 1024
    private var table: [TargetQueue?]
    private var generations: [UInt16]
    private var draining: [Int] = []
    /// Queues with memory-export zeroing in progress: one chunk each per loop turn.
    private var zeroing: [TargetQueue] = []

    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var handoff: [TargetQueue] = []
    /// Queues the control plane saw disconnect (their QPs do not flush on their own).
    private var dropRequests: [TargetQueue] = []
    private let handoffHint: UnsafeMutablePointer<Int>
    private let stopFlag: UnsafeMutablePointer<Int>
    private var thread: OSThread?

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
        tickNanoseconds = min(1_000_000_000, max(keepaliveNanoseconds / 2, 1_000_000))
        self.index = index
        self.context = context
        channel = try CompletionChannel(context: context)
        cq = try CompletionQueue(context: context, capacity: cqCapacity, channel: channel)
        do {
            ring = try IOUring(entries: ringEntries)
            wake = try EventFD()
        } catch {
            throw .call(error)
        }
        self.busyPoll = busyPoll
        spinBudget = busyPoll ? Int.max : 100
        self.logger = logger
        self.retire = retire
        completionBudgetLeft = cqCapacity
        ringBudgetLeft = ringEntries
        table = [TargetQueue?](repeating: nil, count: Self.maxQueues)
        generations = [UInt16](repeating: 0, count: Self.maxQueues)
        draining.reserveCapacity(Self.maxQueues)
        zeroing.reserveCapacity(Self.maxQueues)
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        handoffHint = .allocate(capacity: 1)
        handoffHint.initialize(to: 0)
        stopFlag = .allocate(capacity: 1)
        stopFlag.initialize(to: 0)
        poller.add(channel.fd)
        poller.add(ring.eventFD.rawValue)
        poller.add(wake.rawValue)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        handoffHint.deallocate()
        stopFlag.deallocate()
    }

    /// Starts the thread.
    package func start() throws(SystemError) {
        thread = try OSThread(name: "vireo-w\(index)") { [self] in run() }
    }

    /// Hands a connected queue to this worker (control plane).
    package func adopt(_ q: TargetQueue) {
        pthread_mutex_lock(lock)
        handoff.append(q)
        vireo_relaxed_store(handoffHint, 1)
        pthread_mutex_unlock(lock)
        wake.signal()
    }

    /// Asks the worker to drop `q` (the peer disconnected); it retires it once its storage I/O is done.
    package func requestDrop(_ q: TargetQueue) {
        pthread_mutex_lock(lock)
        dropRequests.append(q)
        vireo_relaxed_store(handoffHint, 1)
        pthread_mutex_unlock(lock)
        wake.signal()
    }

    /// Stops the thread and returns every queue it still held (for the control plane to release).
    package func stop() -> [TargetQueue] {
        vireo_relaxed_store(stopFlag, 1)
        wake.signal()
        thread?.join()
        thread = nil
        var left = table.compactMap { $0 }
        table = [TargetQueue?](repeating: nil, count: Self.maxQueues)
        pthread_mutex_lock(lock)
        left += handoff
        handoff = []
        pthread_mutex_unlock(lock)
        return left
    }

    // MARK: the loop

    private func run() {
        var idle = 0
        var turns: UInt = 0
        while vireo_relaxed_load(stopFlag) == 0 {
            if vireo_relaxed_load(handoffHint) != 0 { takeHandoffs() }
            turns &+= 1
            if turns & 1023 == 0 { livenessTick() }
            var work = pollOnce()
            if work > 0 { idle = 0; continue }
            idle += 1
            if idle < spinBudget { continue }
            // Sleep: arm, look once more (a completion may have landed before arming), then wait.
            do { try cq.requestNotification() } catch { logger.error("worker \(index): \(error)") }
            work = pollOnce()
            if work > 0 { idle = 0; continue }
            do {
                try poller.wait(timeoutMilliseconds: Int32(tickNanoseconds / 1_000_000))
            } catch {
                logger.error("worker \(index): \(error)")
            }
            do { try cq.takeChannelEvents() } catch { logger.error("worker \(index): \(error)") }
            ring.eventFD.drain()
            wake.drain()
            livenessTick()
            idle = 0
        }
        finishStorage()
    }

    /// At most once per `tickNanoseconds` (the sleep wakes at least once a second): lets every
    /// queue probe a silent idle peer or drop one that left its posted work unacknowledged.
    private func livenessTick() {
        let now = monotonicNanoseconds()
        guard now &- lastTick >= tickNanoseconds else { return }
        lastTick = now
        for q in table {
            guard let q else { continue }
            q.checkLiveness(now: now)
            if q.isDraining { noteDraining(q) }
        }
        if !draining.isEmpty { retireDrained() }
    }

    /// At stop: waits (up to 5 s) for io_uring operations still in flight, so no
    /// bounce buffer is released while the kernel may still write into it.
    private func finishStorage() {
        let deadline = monotonicNanoseconds() &+ 5_000_000_000
        while table.contains(where: { ($0?.storageInFlight ?? 0) > 0 }) && monotonicNanoseconds() < deadline {
            guard let (ud, res) = ring.takeCompletion() else {
                usleep(1000)
                continue
            }
            let qi = WorkID.queue(ud)
            guard qi < Self.maxQueues, let q = table[qi], generations[qi] == WorkID.generation(ud) else { continue }
            q.drop("target stopping", fault: .stopping)
            q.storageCompleted(WorkID.index(ud), result: res)
        }
    }

    /// One pass over the CQ and the ring; returns how many completions it handled.
    @inline(__always)
    private func pollOnce() -> Int {
        var work = 0
        let n: Int
        do { n = try cq.poll(into: completions) } catch {
            logger.error("worker \(index): \(error)")
            return 0
        }
        for i in 0..<n {
            let c = completions[i]
            guard let q = queue(for: c.wrId) else { continue }
            q.completed(c)
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
            let qi = WorkID.queue(ud)
            guard qi < Self.maxQueues, let q = table[qi], generations[qi] == WorkID.generation(ud) else { continue }
            q.storageCompleted(WorkID.index(ud), result: res)
            if q.isDraining { noteDraining(q) }
        }
        do { try ring.submit() } catch { logger.error("worker \(index): \(error)") }
        if !draining.isEmpty { retireDrained() }
        return work
    }

    /// One bounded chunk of zeroing for each queue that has some; returns how many queues still have work.
    private func stepZeroing() -> Int {
        var i = 0
        while i < zeroing.count {
            let q = zeroing[i]
            if q.stepZeroing() {
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
    private func queue(for wrId: UInt64) -> TargetQueue? {
        let qi = WorkID.queue(wrId)
        guard qi < Self.maxQueues, let q = table[qi], generations[qi] == WorkID.generation(wrId) else { return nil }
        return q
    }

    private func noteDraining(_ q: TargetQueue) {
        if !draining.contains(q.tableIndex) { draining.append(q.tableIndex) }
    }

    /// Retires draining queues whose storage I/O has finished: out of the table, to the control plane.
    private func retireDrained() {
        var i = 0
        while i < draining.count {
            let qi = draining[i]
            guard let q = table[qi] else { draining.remove(at: i); continue }
            if q.storageInFlight > 0 { i += 1; continue }
            draining.remove(at: i)
            table[qi] = nil
            generations[qi] &+= 1
            if let fault = q.dropFault {
                counters.dropped(fault)
                logger.warning("dropping connection \(q.peerName): \(fault.name): \(q.dropReason ?? "")")
            } else {
                logger.info("\(q.peerName) disconnected")
            }
            retire(q)
        }
    }

    private func takeHandoffs() {
        pthread_mutex_lock(lock)
        let new = handoff
        handoff.removeAll(keepingCapacity: true)
        let drops = dropRequests
        dropRequests.removeAll(keepingCapacity: true)
        vireo_relaxed_store(handoffHint, 0)
        pthread_mutex_unlock(lock)
        for q in new {
            guard let slot = table.firstIndex(where: { $0 == nil }) else {
                q.drop("worker \(index) has no free queue slot", fault: .noQueueSlot)
                retire(q)
                continue
            }
            table[slot] = q
            generations[slot] &+= 1
            counters.accepted()
            q.install(index: slot, generation: generations[slot], ring: ring, counters: counters, logger: logger,
                      liveness: PeerLiveness(keepaliveNanoseconds: keepaliveNanoseconds,
                                             timeoutNanoseconds: peerTimeoutNanoseconds, now: monotonicNanoseconds()))
            if q.isDraining { noteDraining(q) }
        }
        for q in drops where table[q.tableIndex] === q {
            q.drop("disconnected", fault: nil)
            noteDraining(q)
        }
        if !draining.isEmpty { retireDrained() }
    }
}
