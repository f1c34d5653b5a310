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
            // virtio 1.x §5.2.4: at most seg_max data segments.
            if limits.maxDataSegments != .max {
                var slice = req.dataSlice(in: chain)
                var pieces: UInt32 = 0
                while slice.next() != nil {
                    pieces += 1
                    guard pieces <= limits.maxDataSegments else { throw .tooManySegments }
                }
            }
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
    /// that failed to parse) and returns the used length to complete it with:
    /// the whole writable stream, so that the dirty log of a migration covers
    /// that last byte (see `usedLength`); 0 if the chain has no
    /// writable byte (nothing written).
    @discardableResult
    public static func writeStatus(_ status: VirtioBlk.Status, to chain: Chain) -> UInt32 {
        guard chain.writableBytes >= 1, let p = chain.writableByte(at: chain.writableBytes - 1) else { return 0 }
        // SAFETY: one byte inside a writable segment.
        p.storeBytes(of: status.rawValue, as: UInt8.self)
        return chain.writableBytes
    }
}
