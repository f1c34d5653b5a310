import CVireoVerbs

extension CompletionQueue {
    /// Takes every event pending on this CQ's completion channel (without
    /// blocking) and records it for batched acknowledgement, so the channel
    /// fd stops reading as ready. For callers that sleep on `channel.fd`
    /// with their own poll set and then re-arm with `requestNotification`.
    /// Events of other CQs on the same channel are acknowledged at once.
    /// Returns how many events were taken.
    @discardableResult
    public func takeChannelEvents() throws(FabricError) -> Int {
        guard let channel else { return 0 }
        var n = 0
        while let cq = try channel.takeEvent() {
            if cq == OpaquePointer(raw) { noteEvent() } else { ibv_ack_cq_events(UnsafeMutablePointer<ibv_cq>(cq), 1) }
            n += 1
        }
        return n
    }
}
