/// What the device supports, for request validation.
public struct BlkDeviceLimits: Equatable, Sendable {
    /// Device size in 512-byte sectors.
    public var capacitySectors: UInt64
    /// VIRTIO_BLK_F_RO: writes fail with IOERR.
    public var readOnly: Bool
    /// VIRTIO_BLK_F_FLUSH negotiated.
    public var flush: Bool
    /// VIRTIO_BLK_F_DISCARD negotiated, and the segment limit.
    public var discard: Bool
    public var maxDiscardSegments: UInt32
    /// VIRTIO_BLK_F_WRITE_ZEROES negotiated, and the segment limit.
    public var writeZeroes: Bool
    public var maxWriteZeroesSegments: UInt32
    /// Most data pieces (host segments of the chain's data, after splitting
    /// at memory-region boundaries) an IN/OUT request may have: the device's
    /// `seg_max` bound, with room for boundary splits. More is refused at parse.
    public var maxDataSegments: UInt32

    public init(capacitySectors: UInt64, readOnly: Bool = false, flush: Bool = true,
                discard: Bool = false, maxDiscardSegments: UInt32 = 1,
                writeZeroes: Bool = false, maxWriteZeroesSegments: UInt32 = 1, maxDataSegments: UInt32 = .max) {
        self.maxDataSegments = maxDataSegments
        self.capacitySectors = capacitySectors
        self.readOnly = readOnly
        self.flush = flush
        self.discard = discard
        self.maxDiscardSegments = maxDiscardSegments
        self.writeZeroes = writeZeroes
        self.maxWriteZeroesSegments = maxWriteZeroesSegments
    }
}
