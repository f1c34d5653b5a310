/// One guest buffer named in a command: the initiator registered guest memory
/// so that `address` is valid for `rkey` (Vireo registers each guest region
/// with its guest-physical address as IOVA).
public struct WireSegment: Equatable, Sendable {
    public var address: UInt64
    public var length: UInt32
    public var rkey: UInt32
    public init(address: UInt64, length: UInt32, rkey: UInt32) {
        self.address = address
        self.length = length
        self.rkey = rkey
    }
}

/// Limits a target enforces on every command of one connection.
public struct CommandLimits: Sendable {
    public var capacityBytes: UInt64
    /// Offsets and lengths must be multiples of this (512: the virtio sector).
    public var alignment: UInt32
    public var maxSegments: Int
    public var maxIOBytes: UInt32
    public var maxInlineBytes: UInt32
    public var maxDiscardBytes: UInt32
    public var maxWriteZeroesBytes: UInt32

    public init(capacityBytes: UInt64, alignment: UInt32 = 512, maxSegments: Int, maxIOBytes: UInt32,
                maxInlineBytes: UInt32, maxDiscardBytes: UInt32, maxWriteZeroesBytes: UInt32) {
        self.capacityBytes = capacityBytes
        self.alignment = alignment
        self.maxSegments = maxSegments
        self.maxIOBytes = maxIOBytes
        self.maxInlineBytes = maxInlineBytes
        self.maxDiscardBytes = maxDiscardBytes
        self.maxWriteZeroesBytes = maxWriteZeroesBytes
    }

    public init(geometry g: BlockGeometry) {
        self.init(capacityBytes: g.capacityBytes, maxSegments: Int(g.maxSegments), maxIOBytes: g.maxIOBytes,
                  maxInlineBytes: g.maxInlineBytes, maxDiscardBytes: g.maxDiscardBytes,
                  maxWriteZeroesBytes: g.maxWriteZeroesBytes)
    }
}

/// A command capsule in received memory, validated.
///
/// Layout (32-byte header, then segments, then inline data):
/// opcode u8 · flags u8 · segment count u16 · tag u32 · offset u64 ·
/// length u32 · inline length u32 · reserved u64 (zero) ·
/// segments: address u64 · length u32 · rkey u32 (16 bytes each) · inline bytes.
///
/// `parse` checks everything a hostile peer controls before anyone uses it;
/// it allocates nothing and keeps only a pointer into the receive buffer, so
/// the capsule is valid until that buffer is reposted.
public struct CommandCapsule: @unchecked Sendable {
    // SAFETY: `base` points into a receive buffer owned by the connection's
    // worker; the capsule is used on that thread before the buffer is reposted.
    public let base: UnsafeRawPointer
    public let opcode: BlockOpcode
    public let flags: CommandFlags
    public let segmentCount: Int
    /// Echoed in the response; the initiator's request slot.
    public let tag: UInt32
    public let offset: UInt64
    public let length: UInt32
    public let inlineLength: Int

    /// Why a capsule was refused. `tag` is set when the header was readable,
    /// so the target can answer `.invalid` for that command.
    public struct Failure: Error, Equatable, Sendable {
        public let tag: UInt32?
        public let status: BlockStatus
        /// Which check failed (for counters by reason).
        public let check: CapsuleCheck
        public let reason: StaticString
        public static func == (a: Failure, b: Failure) -> Bool {
            a.tag == b.tag && a.status == b.status && a.check == b.check && a.reason.description == b.reason.description
        }
    }

    /// Segment `i` (0 ..< segmentCount).
    @inline(__always)
    public func segment(_ i: Int) -> WireSegment {
        precondition(i >= 0 && i < segmentCount)
        let o = Wire.commandHeaderSize + i * Wire.segmentSize
        return WireSegment(address: LE.load(base, o, as: UInt64.self), length: LE.load(base, o + 8, as: UInt32.self),
                           rkey: LE.load(base, o + 12, as: UInt32.self))
    }

    /// The inline data (WRITE with `.inlineData`).
    public var inlineData: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + Wire.commandHeaderSize + segmentCount * Wire.segmentSize, count: inlineLength)
    }

    /// Validates `byteCount` received bytes at `base` against `limits`.
    public static func parse(
        _ base: UnsafeRawPointer, byteCount: Int, limits: CommandLimits
    ) -> Result<CommandCapsule, Failure> {
        guard byteCount >= Wire.commandHeaderSize else {
            return .failure(Failure(tag: nil, status: .invalid, check: .truncated, reason: "capsule shorter than its header"))
        }
        let tag = LE.load(base, 4, as: UInt32.self)
        func fail(_ status: BlockStatus, _ check: CapsuleCheck, _ reason: StaticString) -> Result<CommandCapsule, Failure> {
            .failure(Failure(tag: tag, status: status, check: check, reason: reason))
        }
        guard let opcode = BlockOpcode(rawValue: LE.load(base, 0, as: UInt8.self)) else {
            return fail(.unsupported, .unknownOpcode, "unknown opcode")
        }
        let flags = CommandFlags(rawValue: LE.load(base, 1, as: UInt8.self))
        guard flags.isSubset(of: .known) else { return fail(.invalid, .unknownFlags, "unknown flags") }
        guard LE.load(base, 24, as: UInt64.self) == 0 else { return fail(.invalid, .reservedNotZero, "reserved bytes not zero") }
        let nseg = Int(LE.load(base, 2, as: UInt16.self))
        guard nseg <= limits.maxSegments else { return fail(.invalid, .tooManySegments, "more segments than negotiated") }
        let inlineRaw = LE.load(base, 20, as: UInt32.self)
        guard inlineRaw <= limits.maxInlineBytes else { return fail(.invalid, .inlineTooLong, "inline data above the negotiated limit") }
        let inline = Int(inlineRaw)
        // Exact size: header + segments + inline (small operands: no overflow possible on 64-bit Int).
        guard Wire.commandSize(segments: nseg, inline: inline) == byteCount else {
            return fail(.invalid, .sizeMismatch, "capsule size does not match its segment count and inline length")
        }
        let offset = LE.load(base, 8, as: UInt64.self)
        let length = LE.load(base, 16, as: UInt32.self)
        let capsule = CommandCapsule(base: base, opcode: opcode, flags: flags, segmentCount: nseg, tag: tag,
                                     offset: offset, length: length, inlineLength: inline)
        guard !flags.contains(.invalidate) || nseg > 0 else {
            return fail(.invalid, .badOperands, "invalidate flag without a segment to invalidate")
        }

        // Segments: each nonempty, and their sum equals `length` where they carry data.
        var total: UInt64 = 0
        for i in 0..<nseg {
            let s = capsule.segment(i)
            guard s.length > 0 else { return fail(.invalid, .badSegment, "empty segment") }
            guard s.address.addingReportingOverflow(UInt64(s.length)).overflow == false else {
                return fail(.invalid, .badSegment, "segment address + length overflows")
            }
            total += UInt64(s.length)  // ≤ 256 × 2^32: cannot overflow UInt64
        }

        // The byte range, for commands that have one.
        func rangeCheck(maxLength: UInt32) -> Result<CommandCapsule, Failure>? {
            let a = UInt64(limits.alignment)
            guard length > 0 else { return fail(.invalid, .badRange, "zero length") }
            guard offset % a == 0, UInt64(length) % a == 0 else { return fail(.invalid, .badRange, "offset or length not sector aligned") }
            guard length <= maxLength else { return fail(.invalid, .tooLong, "length above the negotiated maximum") }
            let (end, o) = offset.addingReportingOverflow(UInt64(length))
            guard !o, end <= limits.capacityBytes else { return fail(.outOfRange, .outOfRange, "range beyond the export") }
            return nil
        }

        switch opcode {
        case .read:
            guard !flags.contains(.inlineData), inline == 0, !flags.contains(.unmap) else {
                return fail(.invalid, .badOperands, "READ with inline data or unmap")
            }
            if let f = rangeCheck(maxLength: limits.maxIOBytes) { return f }
            guard nseg > 0, total == UInt64(length) else { return fail(.invalid, .segmentsMismatch, "segments do not add up to the length") }
        case .write:
            guard !flags.contains(.unmap) else { return fail(.invalid, .badOperands, "WRITE with unmap") }
            if let f = rangeCheck(maxLength: limits.maxIOBytes) { return f }
            if flags.contains(.inlineData) {
                guard nseg == 0, inline == Int(length) else { return fail(.invalid, .badOperands, "inline WRITE must carry exactly its length") }
            } else {
                guard inline == 0, nseg > 0, total == UInt64(length) else {
                    return fail(.invalid, .segmentsMismatch, "segments do not add up to the length")
                }
            }
        case .flush:
            guard nseg == 0, inline == 0, length == 0, offset == 0, flags.isEmpty else {
                return fail(.invalid, .badOperands, "FLUSH carries no range, data or flags")
            }
        case .discard, .writeZeroes:
            guard nseg == 0, inline == 0, !flags.contains(.inlineData) else {
                return fail(.invalid, .badOperands, "DISCARD/WRITE_ZEROES carry no data")
            }
            if opcode == .discard, flags.contains(.unmap) { return fail(.invalid, .badOperands, "DISCARD with unmap flag") }
            let max = opcode == .discard ? limits.maxDiscardBytes : limits.maxWriteZeroesBytes
            guard max > 0 else { return fail(.unsupported, .unsupported, "not supported by this export") }
            if let f = rangeCheck(maxLength: max) { return f }
        case .getID:
            guard inline == 0, flags.subtracting(.invalidate).isEmpty, offset == 0, nseg > 0, length > 0, length <= 20,
                  total == UInt64(length) else {
                return fail(.invalid, .badOperands, "GET_ID takes 1-20 bytes of segments")
            }
        }
        return .success(capsule)
    }
}

/// Builds a command capsule in a send buffer the initiator owns (no allocation).
public enum CommandWriter {
    /// Writes the header; returns the header size. Segments follow with `setSegment`.
    @inline(__always)
    public static func writeHeader(
        _ p: UnsafeMutableRawPointer, opcode: BlockOpcode, flags: CommandFlags = [], segmentCount: Int,
        tag: UInt32, offset: UInt64, length: UInt32, inlineLength: Int = 0
    ) -> Int {
        LE.store(p, 0, opcode.rawValue)
        LE.store(p, 1, flags.rawValue)
        LE.store(p, 2, UInt16(truncatingIfNeeded: segmentCount))
        LE.store(p, 4, tag)
        LE.store(p, 8, offset)
        LE.store(p, 16, length)
        LE.store(p, 20, UInt32(truncatingIfNeeded: inlineLength))
        LE.store(p, 24, UInt64(0))
        return Wire.commandHeaderSize
    }

    /// Writes segment `i` after the header.
    @inline(__always)
    public static func setSegment(_ p: UnsafeMutableRawPointer, _ i: Int, _ s: WireSegment) {
        let o = Wire.commandHeaderSize + i * Wire.segmentSize
        LE.store(p, o, s.address)
        LE.store(p, o + 8, s.length)
        LE.store(p, o + 12, s.rkey)
    }

    // Reading back a capsule this side built (its own buffer: the caller knows the layout holds).

    /// The opcode byte of a built capsule.
    @inline(__always)
    public static func opcode(_ p: UnsafeRawPointer) -> UInt8 { LE.load(p, 0, as: UInt8.self) }

    /// The segment count of a built capsule.
    @inline(__always)
    public static func segmentCount(_ p: UnsafeRawPointer) -> Int { Int(LE.load(p, 2, as: UInt16.self)) }

    /// Segment `i` of a built capsule.
    @inline(__always)
    public static func segment(_ p: UnsafeRawPointer, _ i: Int) -> WireSegment {
        let o = Wire.commandHeaderSize + i * Wire.segmentSize
        return WireSegment(address: LE.load(p, o, as: UInt64.self), length: LE.load(p, o + 8, as: UInt32.self),
                           rkey: LE.load(p, o + 12, as: UInt32.self))
    }

    /// Adds `flags` to a built capsule's flags.
    @inline(__always)
    public static func addFlags(_ p: UnsafeMutableRawPointer, _ flags: CommandFlags) {
        LE.store(p, 1, LE.load(p, 1, as: UInt8.self) | flags.rawValue)
    }
}

/// The target's answer to one command (16 bytes, SENT after any data it
/// wrote, in the same ordered chain): tag u32 · status u8 · reserved [3] · value u64.
public enum ResponseCapsule {
    @inline(__always)
    public static func write(_ p: UnsafeMutableRawPointer, tag: UInt32, status: BlockStatus, value: UInt64 = 0) {
        LE.store(p, 0, tag)
        LE.store(p, 4, status.rawValue)
        LE.store(p, 5, UInt8(0))
        LE.store(p, 6, UInt16(0))
        LE.store(p, 8, value)
    }

    /// Decodes a response of `byteCount` bytes. A short response or unknown status is nil:
    /// the initiator treats that peer as broken and reconnects.
    @inline(__always)
    public static func read(_ p: UnsafeRawPointer, byteCount: Int) -> (tag: UInt32, status: BlockStatus, value: UInt64)? {
        guard byteCount == Wire.responseSize, let status = BlockStatus(rawValue: LE.load(p, 4, as: UInt8.self)) else {
            return nil
        }
        return (LE.load(p, 0, as: UInt32.self), status, LE.load(p, 8, as: UInt64.self))
    }
}
