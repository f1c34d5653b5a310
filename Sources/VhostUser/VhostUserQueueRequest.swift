import Virtio

/// One request taken from a virtqueue: the descriptor chain and where to
/// complete it. Preallocated (one per ring slot) and recycled, so taking a
/// request never allocates. Owned by the queue's worker thread.
public final class VhostUserQueueRequest: @unchecked Sendable {
    // SAFETY (Sendable): handed to the device on the worker thread and
    // completed there; never accessed concurrently.

    /// The chain's host segments (readable first, then writable).
    public let chain: Chain
    /// The virtqueue index this request came from.
    public let queueIndex: Int
    /// Weak: a device may hold a request past its session (an RX buffer the
    /// RNIC is still flushing when the front-end disconnects); once the ring
    /// is gone, completing such a request does nothing.
    private(set) weak var vring: VhostUserVring?
    /// Connection generation at pop time; a completion after the connection
    /// closed is ignored.
    var generation: UInt64 = 0
    /// The ring's pool epoch when this request was allocated (see `VhostUserVring.poolEpoch`).
    var poolEpoch: UInt64 = 0
    /// Packed rings with inflight tracking: the head entry of its record
    /// (`InflightPackedQueue.none` when untracked).
    var inflightEntry: UInt16 = InflightPackedQueue.none
    /// Whether the request is out with the device.
    public internal(set) var isOutstanding = false

    init(vring: VhostUserVring, chainCapacity: UInt16) {
        self.vring = vring
        self.queueIndex = vring.index
        chain = Chain(queueSize: chainCapacity)
    }

    /// Returns the chain to the driver with `writtenLength` bytes written into
    /// its writable segments: publishes the used element, logs dirty pages
    /// (when logging is on), updates inflight tracking and signals the call
    /// eventfd if the driver wants a notification. Call once, on the worker thread.
    public func complete(writtenLength: UInt32) {
        vring?.complete(self, writtenLength: writtenLength)
    }

    /// Takes the next available chain of queue `index`, which must be served
    /// by the same worker (see `VhostUserDevice.worker(forQueue:)`), without
    /// handing it to `handle`. nil when that queue is empty, stopped or on
    /// another worker. Complete it like any request.
    public func takeRequest(fromQueue index: Int) -> VhostUserQueueRequest? {
        guard let worker = vring?.worker, let ring = worker.ring(index) else { return nil }
        return ring.pull()
    }

    /// Marks `[gpa, gpa+length)` dirty in the migration log if logging is on
    /// (for writes the runtime does not see, e.g. an RDMA READ into guest memory).
    public func logWrite(gpa: UInt64, length: UInt64) {
        vring?.log?.logWrite(gpa: gpa, length: length)
    }
}
