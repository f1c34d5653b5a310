/// Why a queue was declared broken.
public enum QueueBrokenReason: Equatable, Sendable {
    /// §2.7.6: avail `idx` is more than the queue size ahead of the device's position.
    case availIndexJump
    /// §2.7.6: an avail ring entry names a descriptor index not below the queue size.
    case headOutOfRange
    /// §2.8.6: a packed chain (NEXT flags) runs longer than the ring.
    case packedChainTooLong
    /// The ring memory is no longer mapped (memory table replaced without the ring).
    case ringUnmapped
}
