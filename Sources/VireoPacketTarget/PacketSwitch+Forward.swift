import VireoWire

extension PacketSwitch {
    /// What happened to one frame, counted: tests and tools check a whole decision at once.
    public enum Verdict: Equatable, Sendable {
        /// Handed to `count` destinations (0 when the frame was flooded and no other port exists).
        case delivered(Int)
        case dropped(PortDrop)
    }

    /// `route`, then `deliver` called for each destination port (tests and tools; the
    /// network's data path moves frames itself from `route`'s answer).
    public mutating func forward(
        _ frame: PacketFrame.Summary, ingress: Int, now: UInt64, checkAllowList: Bool = true,
        _ deliver: (Int) -> Void
    ) -> Verdict {
        switch route(frame, ingress: ingress, now: now, checkAllowList: checkAllowList) {
        case .port(let p):
            deliver(p)
            return .delivered(1)
        case .flood:
            var n = 0
            for p in ports where p != ingress {
                deliver(p)
                n += 1
            }
            return .delivered(n)
        case .dropped(let reason):
            return .dropped(reason)
        }
    }
}
