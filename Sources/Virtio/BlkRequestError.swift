/// Why a virtio-blk request was rejected.
public enum BlkRequestError: Error, Equatable, Sendable {
    /// Fewer than 16 readable bytes for the header (§5.2.6).
    case headerTooShort
    /// No writable byte at the end of the chain for the status (§5.2.6): the
    /// request cannot be answered with a status; complete it with used length 0.
    case missingStatus
    /// Unknown type, or a type whose feature was not negotiated (status UNSUPP).
    case unsupported(UInt32)
    /// IN/OUT data length not a multiple of 512 (§5.2.6.1).
    case dataNotSectorMultiple
    /// sector * 512 + length overflows, or runs past the capacity (§5.2.6.2).
    case outOfRange
    /// A write to a read-only device (§5.2.6.2).
    case readOnly
    /// DISCARD / WRITE_ZEROES payload empty, not a multiple of 16, or over the segment limit.
    case badSegments
    /// IN/OUT data in more pieces than `seg_max` allows (§5.2.4: the driver
    /// MUST NOT submit a request with more than seg_max segments).
    case tooManySegments

    /// The status to write (when a status byte exists).
    public var status: VirtioBlk.Status {
        if case .unsupported = self { return .unsupported }
        return .ioError
    }
}
