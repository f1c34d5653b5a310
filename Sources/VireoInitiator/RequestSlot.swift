import VhostUser
import Virtio

/// Where one virtio request is in its life. Slots are indexed by the chain's
/// head descriptor (unique among in-flight requests of a ring) and double as
/// the wire tag.
enum SlotState: UInt8, Sendable {
    /// No request owns this head; its capsule buffer is free.
    case free
    /// Capsule built, waiting in the submit FIFO: for a credit (granted depth
    /// reached) or for the connection (fabric lost: the request is held and
    /// will be resubmitted as is after a reconnect).
    case queued
    /// Capsule SENT (or batched for posting): the target owns the guest
    /// buffers until its response arrives. Lost connection → back to `queued`.
    case inFlight
    /// The response arrived, but some of the command's memory windows are still valid
    /// (the target invalidates only the first): the initiator's LOCAL_INV of the rest is
    /// posted, and the request completes to the guest when it completes.
    case invalidating
}

/// One request slot; its capsule and response buffers are at `index × stride`
/// of the queue's registered buffers.
struct RequestSlot {
    var state: SlotState = .free
    /// The vhost-user request (chain + completion) while not free.
    var request: VhostUserQueueRequest?
    /// The parsed virtio-blk request while not free.
    var blk: BlkRequest?
    /// Bytes of the capsule buffer to SEND.
    var capsuleBytes = 0
    /// Guest data pieces gathered after the capsule (inline WRITE), 0 otherwise.
    var inlinePieces = 0
    /// Memory windows bound for the command on the current connection (its segments).
    var windowsBound = 0
    /// The target's answer, kept while the windows are invalidated (`invalidating`).
    var status: VirtioBlk.Status = .ok
    /// When the request was taken from the virtqueue (monotonic ns): its latency's start.
    var startedAt: UInt64 = 0
}
