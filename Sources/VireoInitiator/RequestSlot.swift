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
}

/// A fixed-capacity FIFO of slot indices (submission order). No allocation after init.
struct SlotFIFO {
    private var items: [UInt16]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { items = [UInt16](repeating: 0, count: max(1, capacity)) }

    var isEmpty: Bool { count == 0 }

    mutating func push(_ slot: Int) {
        precondition(count < items.count, "slot FIFO overflow")
        items[(head + count) % items.count] = UInt16(truncatingIfNeeded: slot)
        count += 1
    }

    mutating func pop() -> Int? {
        guard count > 0 else { return nil }
        let s = items[head]
        head = (head + 1) % items.count
        count -= 1
        return Int(s)
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }
}
