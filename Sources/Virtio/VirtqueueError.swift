/// What went wrong with a request taken from a virtqueue.
///
/// - `badRequest`: this one request is malformed. The queue stays usable; the
///   device completes the request (for virtio-blk: status IOERR if a status
///   byte is reachable, otherwise used length 0) and carries on. The chain's
///   `head` is valid for `pushUsed`.
/// - `queueBroken`: the ring itself is corrupt (e.g. avail index jumped by
///   more than the queue size). The queue is marked broken and stops
///   processing until it is reset (virtio 1.x §2.1.2 DEVICE_NEEDS_RESET).
public enum VirtqueueError: Error, Equatable, Sendable {
    case badRequest(BadRequestReason)
    case queueBroken(QueueBrokenReason)
}

/// Why a single request was rejected. Each case names the spec rule it enforces.
public enum BadRequestReason: Error, Equatable, Sendable {
    /// §2.7.5.2: a `next` index is not below the queue size (or indirect table length).
    case nextOutOfRange
    /// §2.7.5.2 / §2.7.5.3.1: more descriptors than the queue size (or indirect table): a loop.
    case chainTooLong
    /// §2.7.5.3.1: INDIRECT set in a descriptor inside an indirect table.
    case nestedIndirect
    /// §2.7.5.3.1: INDIRECT and NEXT both set.
    case indirectWithNext
    /// §2.7.5.3.1: INDIRECT used without VIRTIO_F_INDIRECT_DESC negotiated.
    case indirectNotNegotiated
    /// §2.7.5.3: indirect table length 0 or not a multiple of 16.
    case indirectLengthInvalid
    /// Indirect table longer than the queue's configured bound.
    case indirectTooLarge
    /// The indirect table is unmapped or not contiguous in one region.
    case indirectTableUnmapped
    /// §2.7.5.2: the chain's total length exceeds 2^32 - 1 bytes.
    case totalLengthOverflow
    /// §2.7.4.2 / §2.7.5.2: a device-readable descriptor after a device-writable one.
    case readableAfterWritable
    /// A buffer byte lies outside every guest memory region.
    case unmappedBuffer
    /// A buffer's `addr + len` wraps past 2^64.
    case addressOverflow
    /// More host segments than the chain scratch holds.
    case tooManySegments
}

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

/// Why a queue could not be set up from its ring addresses.
public enum QueueSetupError: Error, Equatable, Sendable {
    /// Queue size is 0, above 32768, or (split) not a power of two (§2.6, §2.7).
    case invalidSize(UInt16)
    /// A ring area is not mapped, not inside one region, or overflows.
    case ringUnmapped(RingArea)
    /// A ring area violates its alignment (§2.7 table: 16/2/4; §2.8: 16/4/4).
    case misaligned(RingArea)
}

/// The three areas of a virtqueue (§2.6): descriptor table / ring, driver area, device area.
public enum RingArea: Equatable, Sendable {
    case descriptors, driver, device
}
