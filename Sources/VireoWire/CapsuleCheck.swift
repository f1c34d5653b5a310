/// The check of `CommandCapsule.parse` a refused capsule failed: stable
/// names for counters by reason and log lines.
public enum CapsuleCheck: Int, CaseIterable, Sendable {
    /// Shorter than the 32-byte header (no tag to answer: the peer is broken).
    case truncated = 0
    case unknownOpcode
    case unknownFlags
    case reservedNotZero
    /// A segment count above the negotiated maximum.
    case tooManySegments
    case inlineTooLong
    /// The received size does not match the segment count and inline length.
    case sizeMismatch
    /// An empty segment, or one whose address + length overflows.
    case badSegment
    /// Zero length, or offset/length not sector aligned.
    case badRange
    /// Length above the negotiated maximum for the opcode.
    case tooLong
    /// Offset + length beyond the export.
    case outOfRange
    /// Segment lengths do not add up to the command's length.
    case segmentsMismatch
    /// Operands the opcode does not take (data on FLUSH, unmap on WRITE, ...).
    case badOperands
    /// An opcode the export does not offer.
    case unsupported

    /// The name in counters and logs.
    public var name: String {
        switch self {
        case .truncated: return "truncated"
        case .unknownOpcode: return "unknownOpcode"
        case .unknownFlags: return "unknownFlags"
        case .reservedNotZero: return "reservedNotZero"
        case .tooManySegments: return "tooManySegments"
        case .inlineTooLong: return "inlineTooLong"
        case .sizeMismatch: return "sizeMismatch"
        case .badSegment: return "badSegment"
        case .badRange: return "badRange"
        case .tooLong: return "tooLong"
        case .outOfRange: return "outOfRange"
        case .segmentsMismatch: return "segmentsMismatch"
        case .badOperands: return "badOperands"
        case .unsupported: return "unsupported"
        }
    }
}
