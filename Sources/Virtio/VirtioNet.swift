/// virtio-net constants and the per-packet header (virtio 1.x §5.1).
public enum VirtioNet {
    /// Device ID of a network device (§5.1.1).
    public static let deviceID: UInt32 = 1

    /// Feature bits (§5.1.3), as masks.
    public enum Feature {
        public static let csum: UInt64 = 1 << 0
        public static let guestCsum: UInt64 = 1 << 1
        public static let ctrlGuestOffloads: UInt64 = 1 << 2
        /// `mtu` config field is valid.
        public static let mtu: UInt64 = 1 << 3
        /// `mac` config field is valid.
        public static let mac: UInt64 = 1 << 5
        public static let guestTSO4: UInt64 = 1 << 7
        public static let guestTSO6: UInt64 = 1 << 8
        public static let guestECN: UInt64 = 1 << 9
        public static let guestUFO: UInt64 = 1 << 10
        public static let hostTSO4: UInt64 = 1 << 11
        public static let hostTSO6: UInt64 = 1 << 12
        public static let hostECN: UInt64 = 1 << 13
        public static let hostUFO: UInt64 = 1 << 14
        /// Receive buffers can be merged; `num_buffers` is meaningful.
        public static let mergeableRxBuffers: UInt64 = 1 << 15
        /// `status` config field is valid.
        public static let status: UInt64 = 1 << 16
        /// A control virtqueue exists.
        public static let ctrlVQ: UInt64 = 1 << 17
        /// RX mode control (promisc, allmulti...).
        public static let ctrlRX: UInt64 = 1 << 18
        public static let ctrlVLAN: UInt64 = 1 << 19
        public static let guestAnnounce: UInt64 = 1 << 21
        /// Multiqueue: `max_virtqueue_pairs` is valid.
        public static let multiqueue: UInt64 = 1 << 22
        /// MAC address can be set through the control queue.
        public static let ctrlMACAddr: UInt64 = 1 << 23
        public static let hashReport: UInt64 = 1 << 57
        public static let rss: UInt64 = 1 << 60
        public static let standby: UInt64 = 1 << 62
        public static let speedDuplex: UInt64 = 1 << 63
    }

    /// `struct virtio_net_hdr_v1` (12 bytes, §5.1.6): u8 flags, u8 gso_type,
    /// le16 hdr_len, le16 gso_size, le16 csum_start, le16 csum_offset, le16 num_buffers.
    public struct Header: Equatable, Sendable {
        public static let size = 12
        /// `flags`: checksum needed from csum_start.
        public static let flagNeedsCsum: UInt8 = 1
        /// `flags`: checksum already validated.
        public static let flagDataValid: UInt8 = 2
        /// `flags`: RSC info in csum fields.
        public static let flagRSCInfo: UInt8 = 4
        /// `gso_type` values.
        public static let gsoNone: UInt8 = 0
        public static let gsoTCPv4: UInt8 = 1
        public static let gsoUDP: UInt8 = 3
        public static let gsoTCPv6: UInt8 = 4
        public static let gsoUDPL4: UInt8 = 5
        public static let gsoECN: UInt8 = 0x80

        public var flags: UInt8 = 0
        public var gsoType: UInt8 = 0
        public var hdrLen: UInt16 = 0
        public var gsoSize: UInt16 = 0
        public var csumStart: UInt16 = 0
        public var csumOffset: UInt16 = 0
        /// Buffers a received packet spans (with MRG_RXBUF; else 1 for VERSION_1).
        public var numBuffers: UInt16 = 1

        public init() {}

        /// Decodes 12 little-endian bytes.
        public init(bytes p: UnsafeRawBufferPointer) {
            precondition(p.count >= Self.size)
            flags = p[0]
            gsoType = p[1]
            hdrLen = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            gsoSize = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            csumStart = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
            csumOffset = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
            numBuffers = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
        }

        /// Encodes into `p` (at least 12 bytes). No allocation.
        public func write(to p: UnsafeMutableRawBufferPointer) {
            precondition(p.count >= Self.size)
            p[0] = flags
            p[1] = gsoType
            p.storeBytes(of: hdrLen.littleEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: csumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
            p.storeBytes(of: csumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
            p.storeBytes(of: numBuffers.littleEndian, toByteOffset: 10, as: UInt16.self)
        }

        /// The 12-byte wire form.
        public var bytes: [UInt8] {
            var out = [UInt8](repeating: 0, count: Self.size)
            out.withUnsafeMutableBytes { write(to: $0) }
            return out
        }
    }
}
