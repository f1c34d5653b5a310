import VhostUser

/// A fixed-capacity FIFO of requests the device holds (e.g. guest RX chains
/// not yet in a receive work request), with indexed peeking. Never
/// allocates after init; owned by one worker thread.
struct RequestFIFO {
    private var items: [VhostUserQueueRequest?]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { items = [VhostUserQueueRequest?](repeating: nil, count: max(1, capacity)) }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == items.count }

    /// The `i`-th oldest request (0 ..< count).
    subscript(i: Int) -> VhostUserQueueRequest {
        precondition(i >= 0 && i < count, "request FIFO index out of range")
        return items[(head + i) % items.count]!
    }

    mutating func push(_ r: VhostUserQueueRequest) {
        precondition(count < items.count, "request FIFO overflow")
        items[(head + count) % items.count] = r
        count += 1
    }

    mutating func pop() -> VhostUserQueueRequest? {
        guard count > 0 else { return nil }
        let r = items[head]
        items[head] = nil
        head = (head + 1) % items.count
        count -= 1
        return r
    }
}
