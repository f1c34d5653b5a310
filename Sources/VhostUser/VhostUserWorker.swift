import Synchronization
import Virtio
import VireoSys

/// Polling policy of queue workers.
public struct VhostUserPollingOptions: Sendable {
    /// Empty loop iterations before re-enabling kicks and sleeping (a cap;
    /// `spinNanoseconds` usually ends the spin first).
    public var spinIterations: Int
    /// How long an idle worker keeps polling before it sleeps. Long enough to
    /// catch a fabric round trip on real hardware; short, so a worker that
    /// shares its CPU (the soft-RoCE lab: initiator, target and VMM on 2
    /// vCPUs) hands the CPU over instead of spinning through its time slice.
    public var spinNanoseconds: UInt64
    /// Never sleep: spin on the rings (lowest latency, one core per worker).
    public var busyPoll: Bool
    /// Requests taken from one ring before looking at the next.
    public var batch: Int
    public init(spinIterations: Int = 2000, spinNanoseconds: UInt64 = 50_000, busyPoll: Bool = false, batch: Int = 64) {
        self.spinIterations = spinIterations
        self.spinNanoseconds = spinNanoseconds
        self.busyPoll = busyPoll
        self.batch = batch
    }
}

/// One queue worker: an OS thread serving a group of rings. It waits on the
/// rings' kick eventfds and a control wake eventfd with `Poller`, polling
/// first (spin, then re-enable notifications and block).
///
/// Quiesce protocol (control ↔ worker, lock-free on the hot path): the
/// control thread bumps `requested` and signals `wake`; the worker, on its
/// next loop iteration (one relaxed atomic load per iteration), stops taking
/// requests, drains the ones it handed out (calling `device.poll`), stores
/// `acknowledged` (release) and signals `ack`, then blocks on `wake` until
/// `resumed` reaches the same generation. While it is parked, the control
/// thread owns every ring of the group and may remap memory, replace rings
/// or stop them.
final class VhostUserWorker: @unchecked Sendable {
    // SAFETY (Sendable): ring state is handed over by the handshake above.

    let id: Int
    let rings: [VhostUserVring]
    let device: VhostUserDevice
    let options: VhostUserPollingOptions
    private let wake: EventFD
    private let ack: EventFD
    /// What this thread spends on sleeps, kick reads and calls (its rings count the calls).
    let costs = DataPathCosts()
    private let requested = Atomic<UInt64>(0)
    private let acknowledged = Atomic<UInt64>(0)
    private let resumed = Atomic<UInt64>(0)
    private let exit = Atomic<Bool>(false)
    /// Drains that ran out of time and made the device abort what it held.
    let drainAborts = Atomic<UInt64>(0)
    /// Drains where even the abort left requests out (a device that does not
    /// honour `abortOutstanding`): counted; the park goes on regardless.
    let drainTimedOut = Atomic<UInt64>(0)
    private var generation: UInt64 = 0
    private var thread: OSThread?
    /// Drain bound: a device that never completes cannot wedge the control plane.
    var drainTimeoutNanoseconds: UInt64 = 5_000_000_000
    /// How long the control thread waits for the worker to park (drain and
    /// abort included) before it declares the worker wedged: blocked in a
    /// write to a call eventfd the front-end made blocking and saturated.
    var parkTimeoutNanoseconds: UInt64 = 30_000_000_000
    /// The thread returned from `run` (a wedged worker, once it unblocked).
    let exited = Atomic<Bool>(false)
    /// Abandon outstanding requests instead of draining (disconnect).
    let abandon = Atomic<Bool>(false)

    /// The connection's `PeerFaultGuard` owner tag, and what to do when a
    /// fault was contained in its mappings (close the connection).
    private let faultOwner: UInt64
    private let onPeerFault: @Sendable () -> Void
    /// Told (on the worker thread, once per stop) that the driver broke ring `index`, and why.
    private let onRingStopped: @Sendable (Int, String) -> Void

    init(id: Int, rings: [VhostUserVring], device: VhostUserDevice, options: VhostUserPollingOptions,
         faultOwner: UInt64 = 0, onRingStopped: @escaping @Sendable (Int, String) -> Void = { _, _ in },
         onPeerFault: @escaping @Sendable () -> Void = {}) throws(SystemError) {
        self.onRingStopped = onRingStopped
        self.id = id
        self.faultOwner = faultOwner
        self.onPeerFault = onPeerFault
        self.rings = rings
        self.device = device
        self.options = options
        for r in rings {
            r.pulledOnDemand = device.isPulledOnDemand(queue: r.index)
            r.costs = costs
        }
        wake = try EventFD()
        ack = try EventFD()
    }

    /// The ring with queue index `index` in this worker's group.
    func ring(_ index: Int) -> VhostUserVring? {
        for r in rings where r.index == index { return r }
        return nil
    }

    /// Starts the thread, initially parked (generation 1 requested).
    func start(name: String) throws(SystemError) {
        generation = 1
        requested.store(1, ordering: .releasing)
        thread = try OSThread(name: name) { [self] in
            run()
            exited.store(true, ordering: .releasing)
        }
        _ = waitForAck()
    }

    /// Parks the worker (drain, then hand the rings to the caller). Control
    /// thread only. False when the worker did not park in time (wedged): the
    /// caller must fail the connection and leave the worker's rings alone.
    @discardableResult
    func pause(abandoning: Bool = false) -> Bool {
        if exited.load(ordering: .acquiring) { return true }  // nothing left to park
        guard resumed.load(ordering: .acquiring) == generation else { return true } // already parked
        generation += 1
        abandon.store(abandoning, ordering: .relaxed)
        requested.store(generation, ordering: .releasing)
        wake.signal()
        return waitForAck()
    }

    /// (Control) Gives up on a wedged worker without joining it: when it
    /// unblocks it returns at once, touching neither rings nor device.
    func abandonWedged() {
        abandon.store(true, ordering: .relaxed)
        exit.store(true, ordering: .releasing)
        resumed.store(generation, ordering: .releasing)
        wake.signal()
    }

    /// (Control) Wakes the worker for one service round (e.g. to pay a
    /// ring's start call once its call eventfd exists).
    func nudge() { wake.signal() }

    /// Lets a parked worker run again. Control thread only.
    func resume() {
        guard acknowledged.load(ordering: .acquiring) == generation, resumed.load(ordering: .relaxed) != generation else { return }
        resumed.store(generation, ordering: .releasing)
        wake.signal()
    }

    /// Stops and joins the thread (parks it first).
    func shutdown() {
        pause(abandoning: true)
        exit.store(true, ordering: .releasing)
        resumed.store(generation, ordering: .releasing)
        wake.signal()
        thread?.join()
        thread = nil
    }

    /// Waits for the worker to acknowledge `generation`; false after `parkTimeoutNanoseconds`.
    private func waitForAck() -> Bool {
        let p = Poller(capacity: 1)
        p.add(ack.rawValue)
        let deadline = monotonicNanoseconds() &+ parkTimeoutNanoseconds
        while acknowledged.load(ordering: .acquiring) != generation {
            if monotonicNanoseconds() > deadline { return false }
            _ = try? p.wait(timeoutMilliseconds: 100)
            ack.drain()
        }
        return true
    }

    // MARK: Worker thread

    private func run() {
        let extra = device.wakeDescriptors(worker: id)
        let poller = Poller(capacity: rings.count + 1 + extra.count)
        var idle = 0
        var idleSince: UInt64 = 0
        var seen: UInt64 = 0
        var needsTimeout = false
        var faultsSeen = PeerFaultGuard.totalFaults
        var faulted = false
        /// Poller slots of the kick fds, by ring (the wake fd is slot 0).
        var kickSlots = [Int](repeating: -1, count: rings.count)
        while true {
            // One relaxed load a round: did a SIGBUS get contained anywhere?
            let faults = PeerFaultGuard.totalFaults
            if faults != faultsSeen {
                faultsSeen = faults
                if !faulted, faultOwner != 0, PeerFaultGuard.faults(owner: faultOwner) > 0 {
                    // Our front-end shrank its memory: stop touching its rings, fail the connection.
                    faulted = true
                    onPeerFault()
                }
            }
            let want = requested.load(ordering: .acquiring)
            if want != seen {
                // Given up on while wedged (`abandonWedged`): touch nothing more.
                if exit.load(ordering: .acquiring) { return }
                park(generation: want)
                seen = want
                if exit.load(ordering: .acquiring) { return }
                // Rebuild the wait set: kick fds may have changed.
                poller.removeAll()
                poller.add(wake.rawValue)
                for fd in extra { poller.add(fd) }
                needsTimeout = false
                for (i, r) in rings.enumerated() {
                    kickSlots[i] = -1
                    guard r.isRunning && !r.pulledOnDemand else { continue }
                    if let k = r.kick { kickSlots[i] = poller.add(k.rawValue) } else { needsTimeout = true }
                    r.queue?.disableKickNotifications()
                }
                idle = 0
                continue
            }
            let did = Self.serviceRound(rings, device: device, worker: id, batch: options.batch, faulted: faulted)
            for r in rings {
                // Rare (a broken driver): said once, by the session, which logs it.
                guard let note = r.stopNote else { continue }
                onRingStopped(r.index, note)
                r.stopNote = nil
            }
            if did > 0 { idle = 0; continue }
            if idle == 0 { idleSince = monotonicNanoseconds() }
            idle += 1
            if options.busyPoll { continue }
            // Spin until the iteration cap or the time budget (the clock is
            // read every 64th idle round: where the clock source is not
            // readable from user space, HPET in the lab, each read is a
            // system call) runs out.
            if idle < options.spinIterations
                && (idle & 63 != 0 || monotonicNanoseconds() &- idleSince < options.spinNanoseconds) { continue }
            // Going to sleep: ask for kicks, and re-check for a race.
            var raced = false
            for r in rings where r.isRunning && !r.pulledOnDemand && device.admissionBudget(queue: r.index) > 0 {
                if r.queue?.enableKickNotifications() == true { raced = true }
            }
            if !raced, device.prepareToSleep(worker: id) { raced = true }
            if !raced {
                let anyOutstanding = rings.contains { $0.outstanding > 0 }
                // Poll async completions at a modest rate while requests are
                // out, unless the device wakes the worker itself (its wake
                // descriptors, armed by `prepareToSleep`).
                let timed = anyOutstanding && device.needsTimedPolling(worker: id)
                let timeout: Int32 = needsTimeout || timed ? 1 : -1
                _ = try? poller.wait(timeoutMilliseconds: timeout)
                costs.count(.sleeps)
                // Read only the eventfds that fired (each read is a system call).
                if poller.isReady(0) {
                    _ = wake.drain()
                    costs.count(.eventfdReads)
                }
                for (i, r) in rings.enumerated() where kickSlots[i] >= 0 && poller.isReady(kickSlots[i]) {
                    r.kick?.drain()
                    costs.count(.eventfdReads)
                }
            }
            for r in rings where r.isRunning { r.queue?.disableKickNotifications() }
            idle = 0
        }
    }

    /// One round of queue work: pops up to `batch` (and the device's
    /// admission budget) from each running ring the worker pops, unless the
    /// connection `faulted`, then polls the device. Returns how much was done.
    /// The worker loop's body, and `VhostUserSession.stepQueues()`'s.
    @inline(__always)
    static func serviceRound(_ rings: [VhostUserVring], device: VhostUserDevice, worker id: Int, batch: Int,
                             faulted: Bool) -> Int {
        var did = 0
        // Completions in this round call the driver once per ring, at its end.
        for r in rings { r.batchingCalls = true }
        for r in rings where r.isRunning && !r.pulledOnDemand && !faulted {
            let budget = min(batch, device.admissionBudget(queue: r.index))
            if budget > 0 { did += r.process(device: device, budget: budget) }
        }
        did += device.poll(worker: id)
        for r in rings { r.flushCalls() }
        return did
    }

    private func park(generation gen: UInt64) {
        // Drain: complete what the device still holds, unless abandoning.
        let nap = Poller(capacity: 1)
        nap.add(wake.rawValue)
        device.willPark(worker: id)
        if !abandon.load(ordering: .relaxed) {
            var deadline = monotonicNanoseconds() &+ drainTimeoutNanoseconds
            var aborted = false
            while rings.contains(where: { $0.outstanding > 0 }) {
                if device.poll(worker: id) == 0 {
                    if monotonicNanoseconds() > deadline {
                        // No quiesce lies: what is still out is cut off and
                        // completed (IOERR) before the control thread may act.
                        if !aborted {
                            aborted = true
                            drainAborts.add(1, ordering: .relaxed)
                            device.abortOutstanding(worker: id)
                            deadline = monotonicNanoseconds() &+ drainTimeoutNanoseconds
                            continue
                        }
                        drainTimedOut.add(1, ordering: .relaxed)
                        break
                    }
                    // Yield the CPU briefly while an async device finishes.
                    _ = try? nap.wait(timeoutMilliseconds: 1)
                }
            }
        }
        acknowledged.store(gen, ordering: .releasing)
        ack.signal()
        let p = Poller(capacity: 1)
        p.add(wake.rawValue)
        while resumed.load(ordering: .acquiring) != gen {
            _ = try? p.wait(timeoutMilliseconds: 100)
            wake.drain()
        }
    }
}
