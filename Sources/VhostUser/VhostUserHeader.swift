/// The 12-byte header that starts every vhost-user message:
/// `u32 request, u32 flags, u32 size` (host byte order, little endian on
/// every platform Vireo runs on).
public struct VhostUserHeader: Sendable, Equatable {
    /// Wire size of the header.
    public static let size = 12
    /// Protocol version carried in flags bits 0-1.
    public static let version: UInt32 = 0x1
    /// Flags bits 0-1: version.
    public static let versionMask: UInt32 = 0x3
    /// Flags bit 2: this message is a reply.
    public static let replyFlag: UInt32 = 0x4
    /// Flags bit 3: the sender wants a REPLY_ACK.
    public static let needReplyFlag: UInt32 = 0x8
    /// The largest payload this back-end accepts. Every request it implements
    /// is far smaller; anything larger cannot be resynchronised and closes
    /// the connection.
    public static let maxPayloadSize = 4096

    /// Raw request code (may be unknown).
    public var request: UInt32
    /// Flags word (version, REPLY, NEED_REPLY).
    public var flags: UInt32
    /// Payload size in bytes.
    public var size: UInt32

    public init(request: UInt32, flags: UInt32 = VhostUserHeader.version, size: UInt32) {
        self.request = request
        self.flags = flags
        self.size = size
    }

    /// Whether the front-end set NEED_REPLY.
    public var needsReply: Bool { flags & Self.needReplyFlag != 0 }
    /// Whether REPLY is set.
    public var isReply: Bool { flags & Self.replyFlag != 0 }

    /// Decodes a header from the first 12 bytes of `bytes`.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(VhostUserProtocolError) {
        guard bytes.count >= Self.size else {
            throw VhostUserProtocolError(request: nil, .truncatedHeader(received: bytes.count))
        }
        request = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        flags = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        size = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
    }

    /// Appends the wire form to `out`.
    public func encode(into out: inout [UInt8]) {
        out.appendLE(request)
        out.appendLE(flags)
        out.appendLE(size)
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` little endian.
    @inlinable
    public mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        // SAFETY: `v` is a local trivially-copyable integer.
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    /// Reads a little-endian integer at `offset` (caller checked the bounds).
    @inlinable
    func le<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
