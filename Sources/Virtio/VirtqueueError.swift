/// What went wrong with a request taken from a virtqueue.
///
/// - `badRequest`: this one request is malformed. The queue stays usable; the
///   device completes the request (for virtio-blk: status IOERR if a status
///   byte is reachable, otherwise used length 0) and carries on. The chain's
///   `head` is valid for `pushUsed`.
/// - `queueBroken`: the ring itself is corrupt (e.g. avail index jumped by
///   more than the queue size). The queue is marked broken and stops
///   processing until it is reset (virtio 1.x §2.1.2 DEVICE_NEEDS_RESET).
public enum VirtqueueError: Error, Equatable, Sendable {
    case badRequest(BadRequestReason)
    case queueBroken(QueueBrokenReason)
}
