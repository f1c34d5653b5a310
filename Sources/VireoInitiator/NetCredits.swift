import VireoWire

/// Credit accounting of one packet connection (wire protocol: every SEND
/// consumes a receive buffer the peer posted; every message grants the peer
/// the receive buffers posted since the previous one).
///
/// - `transmit`: frames we may still send (the target's posted receives we
///   know of). Starts at the geometry's receive buffers; each frame takes
///   one; every immediate from the target returns some.
/// - `owed`: receives we posted and have not yet announced. Starts at minus
///   the initial credits announced in the connect request (those receives are
///   posted on adoption) and minus a small reserve that is never announced:
///   the target's credit-only messages land there without ever finding the
///   receive queue empty. Each receive posted adds one; each message we send
///   carries up to 65535 of them.
struct NetCredits: Equatable, Sendable {
    /// Cap on credits held (a target cannot have more receive buffers than this).
    static let maxTransmit = 1 << 20

    private(set) var transmit = 0
    private(set) var owed = 0

    init() {}

    /// Receives kept posted beyond what the target is told (for its credit-only messages).
    static let reserve = 2

    /// The initial credits to announce when `assembled` receives will be
    /// posted on adoption (0 before the guest posted any).
    static func announcement(assembled: Int) -> Int { max(0, assembled - reserve) }

    /// A new connection: the target posted `targetBuffers` receives for us and
    /// was told about `announced` of ours.
    mutating func reset(targetBuffers: Int, announced: Int) {
        transmit = min(max(0, targetBuffers), Self.maxTransmit)
        owed = -max(0, announced) - Self.reserve
    }

    /// Whether a frame may be sent.
    var canSend: Bool { transmit > 0 }

    /// Takes one credit for a frame; returns the grant its immediate carries.
    mutating func takeForFrame() -> UInt16 {
        precondition(transmit > 0, "frame sent without a credit")
        transmit -= 1
        return takeGrant()
    }

    /// The grant for the next message (up to 65535 of what is owed).
    mutating func takeGrant() -> UInt16 {
        guard owed > 0 else { return 0 }
        let g = min(owed, Int(UInt16.max))
        owed -= g
        return UInt16(g)
    }

    /// `n` receives were posted.
    mutating func posted(_ n: Int) { owed += n }

    /// The target granted `n` credits (saturating: a peer cannot make us overflow).
    mutating func granted(_ n: UInt16) { transmit = min(transmit + Int(n), Self.maxTransmit) }

    /// Whether a credit-only message should go now: something is owed, and
    /// either no frame will carry it soon (`idle`) or a quarter of the
    /// receive window (`window` buffers) has piled up.
    func wantsCreditMessage(window: Int, idle: Bool) -> Bool {
        owed > 0 && (idle || owed >= max(1, window / 4))
    }
}
