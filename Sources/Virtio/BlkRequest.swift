/// A parsed virtio-blk request (virtio 1.x §5.2.6): the header fields and
/// where its data and status byte are in the chain.
///
/// Data is a byte range of the chain's readable stream (OUT, DISCARD,
/// WRITE_ZEROES: the device reads it) or writable stream (IN, GET_ID: the
/// device writes it); iterate it with `chain.slice(...)` or `dataSlice(in:)`.
/// The status byte is always the chain's last writable byte.
public struct BlkRequest: Equatable, Sendable {
    /// The request type (only supported types reach a parsed request).
    public var type: VirtioBlk.RequestType
    /// `reserved` / ioprio field of the header.
    public var ioprio: UInt32
    /// Starting 512-byte sector (IN/OUT).
    public var sector: UInt64
    /// Offset of the data in its stream.
    public var dataOffset: UInt32
    /// Data length in bytes.
    public var dataLength: UInt32
    /// The data is in the writable stream (the device fills it).
    public var dataIsWritable: Bool
    /// Offset of the status byte in the writable stream.
    public var statusOffset: UInt32

    /// The data as host pieces (for RDMA scatter/gather or copies).
    public func dataSlice(in chain: Chain) -> Chain.Slice {
        // Cannot fail for a request parsed from this chain.
        chain.slice(writable: dataIsWritable, offset: dataOffset, length: dataLength)!
    }

    /// The `len` to put in the used element on completion: bytes the device
    /// wrote (data for IN/GET_ID on success, plus the status byte).
    public func usedLength(status: VirtioBlk.Status) -> UInt32 {
        dataIsWritable && status == .ok ? dataLength + 1 : 1
    }

    /// Number of discard / write-zeroes segments in the data.
    public var segmentCount: Int { Int(dataLength) / VirtioBlk.DiscardWriteZeroesSegment.size }

    /// Reads discard / write-zeroes segment `index` (copying 16 bytes).
    public func segment(_ index: Int, in chain: Chain) -> VirtioBlk.DiscardWriteZeroesSegment? {
        guard index >= 0, index < segmentCount else { return nil }
        var raw = (UInt64(0), UInt64(0))
        // SAFETY: `raw` is a 16-byte local; copyReadable fills exactly 16 bytes.
        let ok = withUnsafeMutableBytes(of: &raw) {
            chain.copyReadable(from: dataOffset + UInt32(index * VirtioBlk.DiscardWriteZeroesSegment.size), into: $0)
        }
        guard ok else { return nil }
        return withUnsafeBytes(of: &raw) { VirtioBlk.DiscardWriteZeroesSegment(bytes: $0) }
    }

    /// Writes `status` into the chain's status byte.
    public func complete(_ chain: Chain, status: VirtioBlk.Status) {
        // SAFETY: statusOffset < writableBytes (checked at parse); one byte inside a segment.
        chain.writableByte(at: statusOffset)?.storeBytes(of: status.rawValue, as: UInt8.self)
    }
}

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

    public init(capacitySectors: UInt64, readOnly: Bool = false, flush: Bool = true,
                discard: Bool = false, maxDiscardSegments: UInt32 = 1,
                writeZeroes: Bool = false, maxWriteZeroesSegments: UInt32 = 1) {
        self.capacitySectors = capacitySectors
        self.readOnly = readOnly
        self.flush = flush
        self.discard = discard
        self.maxDiscardSegments = maxDiscardSegments
        self.writeZeroes = writeZeroes
        self.maxWriteZeroesSegments = maxWriteZeroesSegments
    }
}

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

    /// The status to write (when a status byte exists).
    public var status: VirtioBlk.Status {
        if case .unsupported = self { return .unsupported }
        return .ioError
    }
}

extension BlkRequest {
    /// Parses the request in `chain`: 16-byte header at the start of the
    /// readable stream (possibly split across descriptors), data, and a
    /// trailing writable status byte. No allocation.
    ///
    /// On error other than `.missingStatus` the caller writes
    /// `error.status` at the last writable byte (see `writeStatus`) and
    /// completes with used length 1.
    public static func parse(_ chain: Chain, limits: BlkDeviceLimits) throws(BlkRequestError) -> BlkRequest {
        // virtio 1.x §5.2.6: the status byte is the last device-writable byte;
        // a chain with none cannot be answered.
        guard chain.writableBytes >= 1 else { throw .missingStatus }
        let statusOffset = chain.writableBytes - 1
        // virtio 1.x §5.2.6: the 16-byte header is device-readable and comes first.
        var raw = (UInt64(0), UInt64(0))
        // SAFETY: `raw` is a 16-byte local; copyReadable fills exactly 16 bytes.
        let haveHeader = withUnsafeMutableBytes(of: &raw) { chain.copyReadable(from: 0, into: $0) }
        guard haveHeader else { throw .headerTooShort }
        let header = withUnsafeBytes(of: &raw) { VirtioBlk.RequestHeader(bytes: $0) }
        guard let type = VirtioBlk.RequestType(rawValue: header.type) else { throw .unsupported(header.type) }
        let hdr = UInt32(VirtioBlk.RequestHeader.size)
        var req = BlkRequest(type: type, ioprio: header.ioprio, sector: header.sector,
                             dataOffset: 0, dataLength: 0, dataIsWritable: false, statusOffset: statusOffset)
        switch type {
        case .in, .out:
            if type == .in {
                req.dataIsWritable = true
                req.dataLength = statusOffset           // writable bytes before the status
            } else {
                // virtio 1.x §5.2.6.2: writes to a read-only device fail with IOERR.
                guard !limits.readOnly else { throw .readOnly }
                req.dataOffset = hdr
                req.dataLength = chain.readableBytes - hdr
            }
            // virtio 1.x §5.2.6.1: IN/OUT data is a multiple of 512 bytes.
            guard UInt64(req.dataLength) % VirtioBlk.sectorSize == 0 else { throw .dataNotSectorMultiple }
            try checkRange(sector: header.sector, sectors: UInt64(req.dataLength) / VirtioBlk.sectorSize, limits: limits)
        case .flush:
            // virtio 1.x §5.2.6: FLUSH carries no data; its sector is ignored.
            guard limits.flush else { throw .unsupported(header.type) }
        case .getID:
            // virtio 1.x §5.2.6: up to 20 bytes of ID string into the writable data.
            req.dataIsWritable = true
            req.dataLength = min(statusOffset, UInt32(VirtioBlk.idBytes))
        case .discard, .writeZeroes:
            let allowed = type == .discard ? limits.discard : limits.writeZeroes
            guard allowed else { throw .unsupported(header.type) }
            if type == .writeZeroes { guard !limits.readOnly else { throw .readOnly } }
            req.dataOffset = hdr
            req.dataLength = chain.readableBytes - hdr
            // virtio 1.x §5.2.6: an array of 16-byte segments, at least one, at most max_*_seg.
            let size = UInt32(VirtioBlk.DiscardWriteZeroesSegment.size)
            let limit = type == .discard ? limits.maxDiscardSegments : limits.maxWriteZeroesSegments
            guard req.dataLength > 0, req.dataLength % size == 0, req.dataLength / size <= limit else { throw .badSegments }
        case .getLifetime, .secureErase:
            throw .unsupported(header.type)
        }
        return req
    }

    /// virtio 1.x §5.2.6.2: the range [sector, sector + sectors) must lie
    /// inside the device; computed without overflow.
    public static func checkRange(sector: UInt64, sectors: UInt64, limits: BlkDeviceLimits) throws(BlkRequestError) {
        // sector * 512 must not overflow (the byte offset used for I/O).
        guard sector <= UInt64.max / VirtioBlk.sectorSize else { throw .outOfRange }
        guard sector <= limits.capacitySectors, sectors <= limits.capacitySectors - sector else { throw .outOfRange }
    }

    /// Writes `status` into the last writable byte of `chain` (for requests
    /// that failed to parse); false if the chain has no writable byte.
    @discardableResult
    public static func writeStatus(_ status: VirtioBlk.Status, to chain: Chain) -> Bool {
        guard chain.writableBytes >= 1, let p = chain.writableByte(at: chain.writableBytes - 1) else { return false }
        // SAFETY: one byte inside a writable segment.
        p.storeBytes(of: status.rawValue, as: UInt8.self)
        return true
    }
}
