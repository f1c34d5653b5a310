/// Device-independent feature bits (virtio 1.x §6 "Reserved Feature Bits"),
/// as masks for a 64-bit feature word.
public enum VirtioFeatures {
    /// Legacy: notify when the avail ring runs empty (bit 24).
    public static let notifyOnEmpty: UInt64 = 1 << 24
    /// Legacy: no framing assumptions (bit 27); implied by VERSION_1.
    public static let anyLayout: UInt64 = 1 << 27
    /// VIRTIO_F_INDIRECT_DESC (bit 28): indirect descriptors (§2.7.5.3, §2.8.7).
    public static let indirectDesc: UInt64 = 1 << 28
    /// VIRTIO_F_EVENT_IDX (bit 29): used_event / avail_event (§2.7.7, §2.7.10, §2.8.10).
    public static let eventIdx: UInt64 = 1 << 29
    /// VIRTIO_F_VERSION_1 (bit 32): a modern (1.x) device.
    public static let version1: UInt64 = 1 << 32
    /// VIRTIO_F_ACCESS_PLATFORM (bit 33): addresses go through the platform IOMMU.
    public static let accessPlatform: UInt64 = 1 << 33
    /// VIRTIO_F_RING_PACKED (bit 34): packed virtqueues (§2.8).
    public static let ringPacked: UInt64 = 1 << 34
    /// VIRTIO_F_IN_ORDER (bit 35): buffers used in the order made available.
    public static let inOrder: UInt64 = 1 << 35
    /// VIRTIO_F_ORDER_PLATFORM (bit 36): platform memory ordering for hardware devices.
    public static let orderPlatform: UInt64 = 1 << 36
    /// VIRTIO_F_SR_IOV (bit 37).
    public static let srIOV: UInt64 = 1 << 37
    /// VIRTIO_F_NOTIFICATION_DATA (bit 38): kicks carry the avail position.
    public static let notificationData: UInt64 = 1 << 38
    /// VIRTIO_F_NOTIF_CONFIG_DATA (bit 39).
    public static let notifConfigData: UInt64 = 1 << 39
    /// VIRTIO_F_RING_RESET (bit 40): individual queue reset (§2.6.1).
    public static let ringReset: UInt64 = 1 << 40
}
