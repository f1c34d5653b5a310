/// The immediate value of every packet SEND (`SEND_WITH_IMM`), in host order
/// (VireoFabric converts to and from the wire's big-endian `imm_data`).
///
/// Bits 31..30: type (0 frame, 1 credit-only with a 0-byte payload; 2 and 3
/// are reserved). Bits 29..16: reserved, zero. Bits 15..0: credits granted —
/// receive buffers the sender newly posted since its previous message.
public struct PacketImmediate: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// The payload is a frame: virtio_net_hdr_v1 + Ethernet frame.
        case frame = 0
        /// No payload; only returns credits.
        case credit = 1
    }

    public var kind: Kind
    /// Receive buffers newly posted by the sender since its last message.
    public var credits: UInt16

    @inline(__always)
    public init(kind: Kind, credits: UInt16) {
        self.kind = kind
        self.credits = credits
    }

    /// The 32-bit immediate (host order).
    @inline(__always)
    public var rawValue: UInt32 { UInt32(kind.rawValue) << 30 | UInt32(credits) }

    /// Decodes an immediate; nil for a reserved type or nonzero reserved bits
    /// (the peer is broken).
    @inline(__always)
    public init?(rawValue: UInt32) {
        guard rawValue & 0x3fff_0000 == 0, let kind = Kind(rawValue: UInt8(truncatingIfNeeded: rawValue >> 30)) else {
            return nil
        }
        self.kind = kind
        credits = UInt16(truncatingIfNeeded: rawValue)
    }

    /// Encodes a frame immediate carrying `credits`.
    @inline(__always)
    public static func frame(credits: UInt16) -> UInt32 { PacketImmediate(kind: .frame, credits: credits).rawValue }

    /// Encodes a credit-only immediate.
    @inline(__always)
    public static func credit(_ credits: UInt16) -> UInt32 { PacketImmediate(kind: .credit, credits: credits).rawValue }
}
