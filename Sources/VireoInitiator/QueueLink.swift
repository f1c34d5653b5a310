import Synchronization
import VireoFabric
import VireoSys
import VireoWire

/// The signals between one queue's worker and its device's fabric supervisor
/// (lock-free on the worker's hot path: two relaxed loads per poll). `Grant`
/// is what a connection's accept carries (block or packet geometry).
///
/// - supervisor → worker: `lostGeneration` (the cm says that connection is
///   gone), `pendingReady` + `pending` (a new connection to adopt).
/// - worker → supervisor: `reconnectWanted` (the worker let go of that
///   generation; make a new one), then `supervisorWake`.
final class QueueLink<Grant: Sendable>: Sendable {
    /// Connection generation the supervisor saw disconnect (0: none).
    let lostGeneration = Atomic<UInt64>(0)
    /// Generation the worker gave up and wants replaced (0: none).
    let reconnectWanted = Atomic<UInt64>(0)
    /// `pending` holds a connection for the worker.
    let pendingReady = Atomic<Bool>(false)
    let pending = Locked<PendingConnection<Grant>?>(nil)
    /// The device was deleted with force (`detach()`): the worker cuts its connection for
    /// good and fails what the device still holds; no reconnect follows.
    let detached = Atomic<Bool>(false)
    /// Receive buffers the worker could post on a new connection right away
    /// (packet queues: announced as initial credits in the connect request).
    let initialCredits = Atomic<Int>(0)
    /// Wakes the queue's worker (one of its wake descriptors).
    let workerWake: EventBox
    /// Wakes the supervisor.
    let supervisorWake: EventBox

    init(supervisorWake: EventBox) throws(SystemError) {
        workerWake = try EventBox()
        self.supervisorWake = supervisorWake
    }
}

/// A connection made by the supervisor for a worker to adopt.
struct PendingConnection<Grant: Sendable>: @unchecked Sendable {
    // SAFETY: handed over through `QueueLink.pending` (a `Locked`); afterwards
    // only the adopting worker posts on it.
    let connection: any FabricLink
    let geometry: Grant
    let generation: UInt64
    /// Initial credits announced in the connect request.
    let announcedCredits: Int
}

/// A shareable eventfd.
final class EventBox: Sendable {
    let event: EventFD
    /// Signalled and not drained yet: the sleeper reads the fd only then (a read is a system call).
    private let pending = Atomic<Bool>(false)
    init() throws(SystemError) { event = try EventFD() }
    var fd: Int32 { event.rawValue }
    func signal() {
        // The write first: a sleeper that finds the flag set drains a counter that is already
        // there (the other order could leave the fd readable with the flag clear: a busy loop).
        event.signal()
        pending.store(true, ordering: .releasing)
    }
    /// Drains the fd if it was signalled since the last drain; returns whether it read.
    @discardableResult func drainIfSignalled() -> Bool {
        guard pending.exchange(false, ordering: .acquiringAndReleasing) else { return false }
        _ = event.drain()
        return true
    }
}

extension QueueLink {
    /// What a queue's worker does before it sleeps: drains the supervisor's wake if it was
    /// signalled, takes the completion channel's events, arms the CQ (each counted in
    /// `costs`). False when the CQ cannot be armed: keep polling. The caller then looks
    /// at its CQ once more, since a completion may have landed before the arming.
    func armForSleep(_ cq: any CompletionSource, costs: DataPathCosts) -> Bool {
        if workerWake.drainIfSignalled() { costs.count(.eventfdReads) }
        if let n = try? cq.takeChannelEvents() { costs.count(.channelReads, UInt64(n)) }
        costs.count(.completionArms)
        do { try cq.requestNotification() } catch { return false }
        return true
    }
}
