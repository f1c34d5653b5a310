import CVireoVerbs

extension CompletionQueue {
    /// Takes every pending event from this CQ's completion channel without
    /// blocking, acknowledging them (this CQ's in batches, other CQs' sharing
    /// the channel at once). For workers that sleep on the channel fd with
    /// their own poller (next to other fds) instead of `wait(into:)`; call it
    /// after waking, before re-arming with `requestNotification()`.
    public func takeChannelEvents() throws(FabricError) {
        guard let channel else { return }
        while let cq = try channel.takeEvent() {
            if cq == OpaquePointer(raw) { noteEvent() } else {
                ibv_ack_cq_events(UnsafeMutablePointer<ibv_cq>(cq), 1)
            }
        }
    }
}
