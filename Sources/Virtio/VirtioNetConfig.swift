/// virtio-net device configuration space (`struct virtio_net_config`,
/// virtio 1.x §5.1.4): mac@0 (6 bytes), status@6 (le16),
/// max_virtqueue_pairs@8 (le16), mtu@10 (le16), speed@12 (le32),
/// duplex@16 (u8), rss_max_key_size@17, rss_max_indirection_table_length@18
/// (le16), supported_hash_types@20 (le32).
public struct VirtioNetConfig: Equatable, Sendable {
    public static let size = 24
    /// `status` bit: link is up (VIRTIO_NET_S_LINK_UP).
    public static let statusLinkUp: UInt16 = 1
    /// `status` bit: the driver should announce itself (VIRTIO_NET_S_ANNOUNCE).
    public static let statusAnnounce: UInt16 = 2
    /// `duplex` values.
    public static let duplexHalf: UInt8 = 0, duplexFull: UInt8 = 1, duplexUnknown: UInt8 = 0xFF

    public var mac: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
    public var status: UInt16 = VirtioNetConfig.statusLinkUp
    public var maxVirtqueuePairs: UInt16 = 1
    public var mtu: UInt16 = 1500
    /// Mbit/s; 0xFFFFFFFF unknown.
    public var speed: UInt32 = 0xFFFF_FFFF
    public var duplex: UInt8 = VirtioNetConfig.duplexUnknown
    public var rssMaxKeySize: UInt8 = 0
    public var rssMaxIndirectionTableLength: UInt16 = 0
    public var supportedHashTypes: UInt32 = 0

    public init(mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]) {
        precondition(mac.count == 6)
        self.mac = (mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
    }

    public static func == (a: VirtioNetConfig, b: VirtioNetConfig) -> Bool { a.serialize() == b.serialize() }

    /// The little-endian wire form (`size` bytes).
    public func serialize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out[0] = mac.0; out[1] = mac.1; out[2] = mac.2; out[3] = mac.3; out[4] = mac.4; out[5] = mac.5
        out.withUnsafeMutableBytes { b in
            b.storeBytes(of: status.littleEndian, toByteOffset: 6, as: UInt16.self)
            b.storeBytes(of: maxVirtqueuePairs.littleEndian, toByteOffset: 8, as: UInt16.self)
            b.storeBytes(of: mtu.littleEndian, toByteOffset: 10, as: UInt16.self)
            b.storeBytes(of: speed.littleEndian, toByteOffset: 12, as: UInt32.self)
            b[16] = duplex
            b[17] = rssMaxKeySize
            b.storeBytes(of: rssMaxIndirectionTableLength.littleEndian, toByteOffset: 18, as: UInt16.self)
            b.storeBytes(of: supportedHashTypes.littleEndian, toByteOffset: 20, as: UInt32.self)
        }
        return out
    }
}
