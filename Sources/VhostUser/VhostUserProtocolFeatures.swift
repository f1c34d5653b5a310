/// Protocol feature bits (`VHOST_USER_PROTOCOL_F_*`), negotiated with
/// GET/SET_PROTOCOL_FEATURES once `VHOST_USER_F_PROTOCOL_FEATURES` is offered.
public struct VhostUserProtocolFeatures: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let mq = Self(rawValue: 1 << 0)
    public static let logSHMFD = Self(rawValue: 1 << 1)
    public static let rarp = Self(rawValue: 1 << 2)
    public static let replyAck = Self(rawValue: 1 << 3)
    public static let mtu = Self(rawValue: 1 << 4)
    public static let backendReq = Self(rawValue: 1 << 5)
    public static let crossEndian = Self(rawValue: 1 << 6)
    public static let cryptoSession = Self(rawValue: 1 << 7)
    public static let pagefault = Self(rawValue: 1 << 8)
    public static let config = Self(rawValue: 1 << 9)
    public static let backendSendFD = Self(rawValue: 1 << 10)
    public static let hostNotifier = Self(rawValue: 1 << 11)
    public static let inflightSHMFD = Self(rawValue: 1 << 12)
    public static let resetDevice = Self(rawValue: 1 << 13)
    public static let inbandNotifications = Self(rawValue: 1 << 14)
    public static let configureMemSlots = Self(rawValue: 1 << 15)
    public static let status = Self(rawValue: 1 << 16)

    /// Everything this back-end implements; a device narrows it with
    /// `VhostUserDevice.protocolFeatures`.
    public static let supported: Self = [
        .mq, .logSHMFD, .rarp, .replyAck, .mtu, .backendReq, .config,
        .inflightSHMFD, .resetDevice, .configureMemSlots, .status,
    ]

    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// vhost-level feature bits that the vhost-user protocol itself adds (the
/// device-independent virtio bits are `VirtioFeatures`).
public enum VhostFeature {
    /// `VHOST_USER_F_PROTOCOL_FEATURES` (bit 30): GET_PROTOCOL_FEATURES is available,
    /// and rings start disabled until SET_VRING_ENABLE.
    public static let protocolFeatures: UInt64 = 1 << 30
    /// `VHOST_F_LOG_ALL` (bit 26): log every write to guest memory (migration).
    public static let logAll: UInt64 = 1 << 26
}
