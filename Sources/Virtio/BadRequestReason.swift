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
