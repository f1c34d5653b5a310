import Virtio
import VireoWire

/// What one connection lets a command carry (from the granted geometry and
/// the queue pair's send scatter/gather capacity).
public struct CapsuleLimits: Equatable, Sendable {
    /// Segments per command (granted).
    public var maxSegments: Int
    /// Data bytes per command (granted).
    public var maxIOBytes: UInt32
    /// Largest inline WRITE (granted; 0: none).
    public var maxInlineBytes: UInt32
    /// Guest pieces an inline SEND may gather besides the capsule header (0: no inline).
    public var maxInlinePieces: Int
    public var maxDiscardBytes: UInt32
    public var maxWriteZeroesBytes: UInt32

    public init(maxSegments: Int, maxIOBytes: UInt32, maxInlineBytes: UInt32, maxInlinePieces: Int,
                maxDiscardBytes: UInt32, maxWriteZeroesBytes: UInt32) {
        self.maxSegments = maxSegments
        self.maxIOBytes = maxIOBytes
        self.maxInlineBytes = maxInlineBytes
        self.maxInlinePieces = maxInlinePieces
        self.maxDiscardBytes = maxDiscardBytes
        self.maxWriteZeroesBytes = maxWriteZeroesBytes
    }

    public init(geometry g: BlockGeometry, maxInlinePieces: Int) {
        self.init(maxSegments: Int(g.maxSegments), maxIOBytes: g.maxIOBytes, maxInlineBytes: g.maxInlineBytes,
                  maxInlinePieces: g.maxInlineBytes > 0 ? maxInlinePieces : 0,
                  maxDiscardBytes: g.flags.contains(.discard) ? g.maxDiscardBytes : 0,
                  maxWriteZeroesBytes: g.flags.contains(.writeZeroes) ? g.maxWriteZeroesBytes : 0)
    }

    /// Bytes of a capsule buffer: header plus every segment (inline data is
    /// never copied into it: it travels as extra SGEs over guest memory).
    public var capsuleBufferSize: Int { Wire.commandSize(segments: maxSegments, inline: 0) }
}

/// Builds the command capsule for a parsed virtio-blk request, translating
/// each guest data piece into a wire segment (guest address, length, rkey of
/// its region). Writes only the capsule buffer; never touches payload bytes.
public enum CapsuleBuilder {
    /// What to do with a request.
    public enum Outcome: Equatable, Sendable {
        /// SEND the first `byteCount` bytes of the capsule buffer, followed by
        /// `inlinePieces` guest data pieces gathered in place (inline WRITE).
        case send(byteCount: Int, inlinePieces: Int)
        /// Nothing to send: complete the request with this status now.
        case complete(VirtioBlk.Status)
    }

    /// Fills `capsule` (at least `limits.capsuleBufferSize` bytes) for `request` of `chain`.
    public static func build(
        _ request: BlkRequest, chain: Chain, regions: GuestRegionTable, limits: CapsuleLimits,
        tag: UInt32, into capsule: UnsafeMutableRawPointer
    ) -> Outcome {
        switch request.type {
        case .in:
            return data(.read, request, chain, regions, limits, tag, capsule)
        case .out:
            return data(.write, request, chain, regions, limits, tag, capsule)
        case .flush:
            return .send(byteCount: CommandWriter.writeHeader(capsule, opcode: .flush, segmentCount: 0, tag: tag,
                                                              offset: 0, length: 0), inlinePieces: 0)
        case .getID:
            guard request.dataLength > 0 else { return .complete(.ioError) }
            return segments(.getID, offset: 0, request, chain, regions, limits, tag, capsule)
        case .discard, .writeZeroes:
            return range(request, chain, limits, tag, capsule)
        case .getLifetime, .secureErase:
            return .complete(.unsupported)
        }
    }

    /// READ / WRITE: empty requests complete at once; small writes go inline.
    private static func data(
        _ op: BlockOpcode, _ r: BlkRequest, _ chain: Chain, _ regions: GuestRegionTable, _ limits: CapsuleLimits,
        _ tag: UInt32, _ capsule: UnsafeMutableRawPointer
    ) -> Outcome {
        guard r.dataLength > 0 else { return .complete(.ok) }
        guard r.dataLength <= limits.maxIOBytes else { return .complete(.ioError) }
        // sector <= UInt64.max / 512 was checked by BlkRequest.parse.
        let offset = r.sector &* VirtioBlk.sectorSize
        if op == .write, r.dataLength <= limits.maxInlineBytes, limits.maxInlinePieces > 0,
           let pieces = inlinePieces(r, chain, regions, limit: limits.maxInlinePieces) {
            let n = CommandWriter.writeHeader(capsule, opcode: .write, flags: .inlineData, segmentCount: 0, tag: tag,
                                              offset: offset, length: r.dataLength, inlineLength: Int(r.dataLength))
            return .send(byteCount: n, inlinePieces: pieces)
        }
        return segments(op, offset: offset, r, chain, regions, limits, tag, capsule)
    }

    /// Counts the guest pieces of an inline write, each inside a registered
    /// region (their lkey is needed); nil if there are too many or one is unknown.
    private static func inlinePieces(_ r: BlkRequest, _ chain: Chain, _ regions: GuestRegionTable, limit: Int) -> Int? {
        var slice = r.dataSlice(in: chain)
        var n = 0
        while let s = slice.next() {
            n += 1
            guard n <= limit, regions.lookup(address: s.guestAddr, length: UInt64(s.length), hint: s.region) != nil else { return nil }
        }
        return n
    }

    /// A command whose data is the request's guest buffers, named by segments.
    private static func segments(
        _ op: BlockOpcode, offset: UInt64, _ r: BlkRequest, _ chain: Chain, _ regions: GuestRegionTable,
        _ limits: CapsuleLimits, _ tag: UInt32, _ capsule: UnsafeMutableRawPointer
    ) -> Outcome {
        var slice = r.dataSlice(in: chain)
        var n = 0
        while let s = slice.next() {
            // A chain segment never crosses a region (the chain walker splits at boundaries).
            guard n < limits.maxSegments, let w = regions.wireSegment(guestAddr: s.guestAddr, length: s.length, hint: s.region) else {
                return .complete(.ioError)
            }
            CommandWriter.setSegment(capsule, n, w)
            n += 1
        }
        let h = CommandWriter.writeHeader(capsule, opcode: op, segmentCount: n, tag: tag, offset: offset,
                                          length: r.dataLength)
        return .send(byteCount: h + n * Wire.segmentSize, inlinePieces: 0)
    }

    /// DISCARD / WRITE_ZEROES: one virtio segment (max_*_seg = 1) becomes one ranged command.
    private static func range(
        _ r: BlkRequest, _ chain: Chain, _ limits: CapsuleLimits, _ tag: UInt32, _ capsule: UnsafeMutableRawPointer
    ) -> Outcome {
        let zeroes = r.type == .writeZeroes
        guard r.segmentCount == 1, let seg = r.segment(0, in: chain) else { return .complete(.ioError) }
        // Discard takes no flags; write zeroes only UNMAP (virtio 1.x §5.2.6.2).
        let allowed: UInt32 = zeroes ? VirtioBlk.DiscardWriteZeroesSegment.flagUnmap : 0
        guard seg.flags & ~allowed == 0 else { return .complete(.unsupported) }
        let sectors = UInt64(seg.numSectors)
        guard sectors > 0 else { return .complete(.ioError) }
        let bytes = sectors &* VirtioBlk.sectorSize      // < 2^41: no overflow
        let max = zeroes ? limits.maxWriteZeroesBytes : limits.maxDiscardBytes
        guard max > 0 else { return .complete(.unsupported) }
        guard bytes <= UInt64(max), seg.sector <= UInt64.max / VirtioBlk.sectorSize else { return .complete(.ioError) }
        let flags: CommandFlags = zeroes && seg.flags & allowed != 0 ? .unmap : []
        let n = CommandWriter.writeHeader(capsule, opcode: zeroes ? .writeZeroes : .discard, flags: flags,
                                          segmentCount: 0, tag: tag, offset: seg.sector &* VirtioBlk.sectorSize,
                                          length: UInt32(bytes))
        return .send(byteCount: n, inlinePieces: 0)
    }
}
