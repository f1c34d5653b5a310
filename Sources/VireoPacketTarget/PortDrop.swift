import VireoWire

/// Why the switch did not deliver a frame (counted per port and per network).
public enum PortDrop: Int, Sendable, CaseIterable {
    /// The destination port held no credit (its initiator posted no free receive buffer):
    /// floods only (a unicast frame waits for credit, see `stalled`).
    case noCredit = 0
    /// The destination port had no free send buffer (sends not yet completed).
    case noSendBuffer = 1
    /// The frame failed validation (short, header flags, GSO, bad source MAC).
    case malformed = 2
    /// The frame is longer than the network's MTU allows.
    case tooLong = 3
    /// The source MAC is not in the network's or the ingress port's allow-list
    /// ("source MAC not allowed").
    case notAllowed = 4
    /// The destination was learned on the ingress port itself.
    case filtered = 5
    /// The TAP uplink refused the frame (queue full or error).
    case tapError = 6
    /// A flood (broadcast, multicast, unknown unicast) past its ingress port's flood budget.
    case floodLimited = 7
    /// The source MAC is learned, live, on another port, and this port may not take it
    /// (not in its allow-list): a spoofed address, not relearned.
    case macConflict = 8
    /// A frame waited for its destination's credit longer than the hold timeout: the
    /// destination's guest stopped taking frames (the only loss on a congested path).
    case stalled = 9
    /// A frame found its destination's queue of held frames full.
    case backlog = 10
    /// A frame was held for a destination port that left the network.
    case portGone = 11

    /// The counter a frame validation failure goes to.
    @inline(__always)
    public init(_ reason: PacketFrame.DropReason) {
        self = reason == .tooLong ? .tooLong : .malformed
    }

    public var name: String {
        switch self {
        case .noCredit: return "noCredit"
        case .noSendBuffer: return "noSendBuffer"
        case .malformed: return "malformed"
        case .tooLong: return "tooLong"
        case .notAllowed: return "notAllowed"
        case .filtered: return "filtered"
        case .tapError: return "tapError"
        case .floodLimited: return "floodLimited"
        case .macConflict: return "macConflict"
        case .stalled: return "stalled"
        case .backlog: return "backlog"
        case .portGone: return "portGone"
        }
    }
}
