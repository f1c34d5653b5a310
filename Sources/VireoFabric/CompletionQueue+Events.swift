import CVireoVerbs

extension CompletionQueue {
    /// Takes every pending event from this CQ's completion channel without
    /// blocking, acknowledging them (this CQ's in batches, other CQs' sharing
    /// the channel at once). For workers that sleep on the channel fd with
    /// their own poller (next to other fds) instead of `wait(into:)`; call it
    /// after waking, before re-arming with `requestNotification()`.
    /// Returns the reads it made (each a system call: the events, and the one that found none).
    @discardableResult
    public func takeChannelEvents() throws(FabricError) -> Int {
        guard let channel else { return 0 }
        var reads = 1
        while let cq = try channel.takeEvent() {
            reads += 1
            if cq == OpaquePointer(raw) { noteEvent() } else {
                ibv_ack_cq_events(UnsafeMutablePointer<ibv_cq>(cq), 1)
            }
        }
        return reads
    }
}
