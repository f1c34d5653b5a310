/// Vireo's wire protocol, version 2: constants shared by target and
/// initiator. The format is specified in docs/wire-protocol.md; every
/// multi-byte field is little endian.
public enum Wire {
    /// First four bytes of every handshake message: "VIRE".
    public static let magic: UInt32 = 0x4552_4956
    /// The protocol version this build speaks.
    public static let version: UInt8 = 2

    /// What a connection attaches to.
    public enum EndpointKind: UInt8, Sendable {
        case block = 1
        case packet = 2
    }

    /// Size of a command capsule header.
    public static let commandHeaderSize = 32
    /// Size of one segment descriptor in a command capsule.
    public static let segmentSize = 16
    /// Size of a response capsule.
    public static let responseSize = 16
    /// Longest endpoint name (bytes of UTF-8) that fits the connect request.
    public static let maxNameLength = 23
    /// Hard upper bound on segments per command, whatever is negotiated.
    public static let maxSegmentsLimit = 256
    /// Hard upper bound on data bytes per command.
    public static let maxIOLimit = 16 << 20
    /// Hard upper bound on inline write data.
    public static let maxInlineLimit = 16 << 10
    /// Hard upper bound on queue depth.
    public static let maxQueueDepthLimit = 1024
    /// Size of `virtio_net_hdr_v1`, which starts every packet SEND.
    public static let netHeaderSize = 12
    /// Ethernet header: destination, source, EtherType.
    public static let ethernetHeaderSize = 14
    /// One 802.1Q tag.
    public static let vlanTagSize = 4

    /// Size of a command capsule with `segments` segments and `inline` inline bytes (no overflow for valid limits).
    @inline(__always)
    public static func commandSize(segments: Int, inline: Int) -> Int {
        commandHeaderSize + segments * segmentSize + inline
    }
}

/// Block commands.
public enum BlockOpcode: UInt8, Sendable, CaseIterable {
    /// Target RDMA-WRITEs `length` bytes from `offset` into the segments.
    case read = 1
    /// Target RDMA-READs the segments (or takes the inline data) and writes them at `offset`.
    case write = 2
    /// Target makes every completed write durable (fdatasync).
    case flush = 3
    /// Target deallocates `[offset, offset+length)`; later reads return zeroes.
    case discard = 4
    /// Target zeroes `[offset, offset+length)` (may deallocate when `flags.unmap`).
    case writeZeroes = 5
    /// Target RDMA-WRITEs the export's identifier (up to 20 bytes) into the segments.
    case getID = 6
}

/// Command capsule flags.
public struct CommandFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// WRITE data travels inside the capsule after the (zero) segments.
    public static let inlineData = CommandFlags(rawValue: 1 << 0)
    /// WRITE_ZEROES may deallocate.
    public static let unmap = CommandFlags(rawValue: 1 << 1)
    /// The segments' keys are the initiator's memory windows, bound for this command only:
    /// the target answers with SEND_WITH_INV naming segment 0's key (the initiator
    /// invalidates the others itself). Only with segments.
    public static let invalidate = CommandFlags(rawValue: 1 << 2)
    /// Every flag this version defines; others must be zero.
    public static let known: CommandFlags = [.inlineData, .unmap, .invalidate]
}

/// Completion status of a command.
public enum BlockStatus: UInt8, Sendable, CaseIterable {
    case ok = 0
    /// The storage failed (EIO and the like).
    case ioError = 1
    /// The export does not support this command (e.g. DISCARD on a block device without it).
    case unsupported = 2
    /// The range is outside the export.
    case outOfRange = 3
    /// A write to a read-only export.
    case readOnly = 4
    /// The capsule was malformed (the connection stays up).
    case invalid = 5
    /// The guest buffers could not be reached (RDMA access error on this command).
    case transferError = 6
}

/// Why a target refused a connection (carried in the reject private data).
public enum RejectReason: UInt16, Sendable, CaseIterable {
    case noSuchEndpoint = 1
    case readOnly = 2
    case queueLimit = 3
    case versionMismatch = 4
    case malformed = 5
    case wrongKind = 6
    case internalError = 7
    /// Not a refusal: the answer to a path probe (`ConnectRequest.probe`) that passed every
    /// check a connect would; nothing was allocated for it.
    case probeAnswer = 8
}

/// A handshake message could not be decoded.
public struct WireError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
