/// Virtqueue ring constants and layout sizes (virtio 1.x §2.7 split, §2.8 packed).
public enum RingLayout {
    /// Size of one descriptor, split and packed alike (§2.7.5, §2.8.13).
    public static let descriptorSize = 16
    /// Largest queue size the spec allows (§2.6: Queue Size max 32768).
    public static let maxQueueSize: UInt16 = 32768

    // Descriptor flags (§2.7.5, §2.8.13).
    /// The buffer continues in `next` (split) / the following ring slot (packed).
    public static let descFlagNext: UInt16 = 1
    /// The buffer is device-writable (otherwise device-readable).
    public static let descFlagWrite: UInt16 = 2
    /// The buffer holds a table of indirect descriptors (§2.7.5.3, §2.8.7).
    public static let descFlagIndirect: UInt16 = 4
    /// Packed ring: the driver's wrap counter when it made the descriptor available (§2.8.1).
    public static let packedDescFlagAvail: UInt16 = 1 << 7
    /// Packed ring: the device's wrap counter when it marked the descriptor used (§2.8.1).
    public static let packedDescFlagUsed: UInt16 = 1 << 15

    /// Split avail ring `flags`: the driver asks for no used-buffer notification (§2.7.7).
    public static let availFlagNoInterrupt: UInt16 = 1
    /// Split used ring `flags`: the device asks for no available-buffer notification (§2.7.10).
    public static let usedFlagNoNotify: UInt16 = 1

    // Packed event suppression `flags` (§2.8.10).
    public static let packedEventEnable: UInt16 = 0
    public static let packedEventDisable: UInt16 = 1
    /// Notify at the descriptor given by `off_wrap` (needs VIRTIO_F_EVENT_IDX).
    public static let packedEventDesc: UInt16 = 2

    /// Bytes of the split descriptor table for `size` entries (alignment 16).
    public static func splitDescriptorTableBytes(size: UInt16) -> Int { 16 * Int(size) }
    /// Bytes of the split avail ring incl. `used_event` (alignment 2).
    public static func splitAvailRingBytes(size: UInt16) -> Int { 6 + 2 * Int(size) }
    /// Bytes of the split used ring incl. `avail_event` (alignment 4).
    public static func splitUsedRingBytes(size: UInt16) -> Int { 6 + 8 * Int(size) }
    /// Bytes of the packed descriptor ring (alignment 16).
    public static func packedRingBytes(size: UInt16) -> Int { 16 * Int(size) }
    /// Bytes of a packed event suppression structure (alignment 4).
    public static let packedEventBytes = 4
}
