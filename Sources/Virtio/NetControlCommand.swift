/// A virtio-net control queue command (virtio 1.x §5.1.6.5):
/// `u8 class; u8 command; u8 data[]` device-readable, then `u8 ack` device-writable.
public struct NetControlCommand: Equatable, Sendable {
    /// `ack` values.
    public static let ackOK: UInt8 = 0
    public static let ackError: UInt8 = 1

    /// Command classes and commands (§5.1.6.5.x).
    public enum Class {
        /// VIRTIO_NET_CTRL_RX (needs CTRL_RX): data is one u8 on/off.
        public static let rx: UInt8 = 0
        public static let rxPromisc: UInt8 = 0
        public static let rxAllMulti: UInt8 = 1
        public static let rxAllUni: UInt8 = 2
        public static let rxNoMulti: UInt8 = 3
        public static let rxNoUni: UInt8 = 4
        public static let rxNoBcast: UInt8 = 5
        /// VIRTIO_NET_CTRL_MAC.
        public static let mac: UInt8 = 1
        /// Two tables: le32 entries + 6-byte MACs, unicast then multicast.
        public static let macTableSet: UInt8 = 0
        /// 6-byte MAC (needs CTRL_MAC_ADDR).
        public static let macAddrSet: UInt8 = 1
        /// VIRTIO_NET_CTRL_VLAN: le16 vlan id.
        public static let vlan: UInt8 = 2
        public static let vlanAdd: UInt8 = 0
        public static let vlanDel: UInt8 = 1
        /// VIRTIO_NET_CTRL_ANNOUNCE.
        public static let announce: UInt8 = 3
        public static let announceAck: UInt8 = 0
        /// VIRTIO_NET_CTRL_MQ (needs MQ).
        public static let mq: UInt8 = 4
        /// le16 virtqueue_pairs in [1, 0x8000].
        public static let mqVQPairsSet: UInt8 = 0
        public static let mqRSSConfig: UInt8 = 1
        public static let mqHashConfig: UInt8 = 2
        public static let mqVQPairsMin: UInt16 = 1
        public static let mqVQPairsMax: UInt16 = 0x8000
        /// VIRTIO_NET_CTRL_GUEST_OFFLOADS: le64 offload bits.
        public static let guestOffloads: UInt8 = 5
        public static let guestOffloadsSet: UInt8 = 0
    }

    public var commandClass: UInt8
    public var command: UInt8
    /// Offset and length of the command data in the readable stream.
    public var dataOffset: UInt32
    public var dataLength: UInt32
    /// Offset of the ack byte in the writable stream (its last byte).
    public var ackOffset: UInt32

    /// Parses a control command chain; nil if it has fewer than 2 readable
    /// bytes or no writable ack byte.
    public static func parse(_ chain: Chain) -> NetControlCommand? {
        guard chain.readableBytes >= 2, chain.writableBytes >= 1 else { return nil }
        var hdr: UInt16 = 0
        // SAFETY: `hdr` is a 2-byte local; copyReadable fills exactly 2 bytes.
        guard withUnsafeMutableBytes(of: &hdr, { chain.copyReadable(from: 0, into: $0) }) else { return nil }
        return withUnsafeBytes(of: &hdr) { b in
            NetControlCommand(commandClass: b[0], command: b[1], dataOffset: 2,
                              dataLength: chain.readableBytes - 2, ackOffset: chain.writableBytes - 1)
        }
    }

    /// Reads the le16 argument of e.g. MQ_VQ_PAIRS_SET or VLAN_ADD.
    public func uint16Argument(in chain: Chain) -> UInt16? {
        guard dataLength >= 2 else { return nil }
        var v: UInt16 = 0
        // SAFETY: `v` is a 2-byte local.
        guard withUnsafeMutableBytes(of: &v, { chain.copyReadable(from: dataOffset, into: $0) }) else { return nil }
        return UInt16(littleEndian: v)
    }

    /// Reads the u8 argument of an RX mode command.
    public func uint8Argument(in chain: Chain) -> UInt8? {
        guard dataLength >= 1 else { return nil }
        var v: UInt8 = 0
        // SAFETY: `v` is a 1-byte local.
        guard withUnsafeMutableBytes(of: &v, { chain.copyReadable(from: dataOffset, into: $0) }) else { return nil }
        return v
    }

    /// Writes the ack byte.
    public func acknowledge(_ chain: Chain, ack: UInt8) {
        // SAFETY: ackOffset < writableBytes (checked at parse).
        chain.writableByte(at: ackOffset)?.storeBytes(of: ack, as: UInt8.self)
    }
}
