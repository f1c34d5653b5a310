import Testing
@testable import VireoWire

/// Builds capsules (the initiator's side) and parses them (the target's side).
@Suite struct CommandCapsuleTests {
    let limits = CommandLimits(capacityBytes: 1 << 30, maxSegments: 8, maxIOBytes: 1 << 20, maxInlineBytes: 4096,
                               maxDiscardBytes: 1 << 24, maxWriteZeroesBytes: 1 << 24)

    struct Spec {
        var opcode: UInt8 = BlockOpcode.read.rawValue
        var flags: UInt8 = 0
        var segments: [WireSegment] = [WireSegment(address: 0x10000, length: 4096, rkey: 7)]
        var declaredSegments: Int? = nil
        var tag: UInt32 = 42
        var offset: UInt64 = 8192
        var length: UInt32 = 4096
        var inline: [UInt8] = []
        var declaredInline: UInt32? = nil
        var reserved: UInt64 = 0
        var truncateBy = 0
    }

    func bytes(_ s: Spec) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Wire.commandSize(segments: s.segments.count, inline: s.inline.count))
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            _ = CommandWriter.writeHeader(p, opcode: .read, segmentCount: s.declaredSegments ?? s.segments.count,
                                          tag: s.tag, offset: s.offset, length: s.length,
                                          inlineLength: Int(s.declaredInline ?? UInt32(s.inline.count)))
            p.storeBytes(of: s.opcode, toByteOffset: 0, as: UInt8.self)
            p.storeBytes(of: s.flags, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: s.reserved.littleEndian, toByteOffset: 24, as: UInt64.self)
            for (i, seg) in s.segments.enumerated() { CommandWriter.setSegment(p, i, seg) }
            let o = Wire.commandSize(segments: s.segments.count, inline: 0)
            for (i, byte) in s.inline.enumerated() { p.storeBytes(of: byte, toByteOffset: o + i, as: UInt8.self) }
        }
        return Array(b.dropLast(s.truncateBy))
    }

    /// Keeps parsed capsules' bytes alive: a `CommandCapsule` is a view of
    /// the receive buffer it was parsed from (found by AddressSanitizer: the
    /// bytes used to be freed before the test read the segments).
    final class Buffers {
        var all: [UnsafeMutableRawBufferPointer] = []
        deinit { for b in all { b.deallocate() } }
    }
    let buffers = Buffers()

    func parse(_ s: Spec) -> Result<CommandCapsule, CommandCapsule.Failure> {
        let b = bytes(s)
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(b.count, 1), alignment: 8)
        raw.copyBytes(from: b)
        buffers.all.append(raw)
        return CommandCapsule.parse(UnsafeRawPointer(raw.baseAddress!), byteCount: b.count, limits: limits)
    }

    @Test func validCommandsParse() throws {
        let read = try parse(Spec()).get()
        #expect(read.opcode == .read && read.tag == 42 && read.offset == 8192 && read.length == 4096)
        #expect(read.segment(0) == WireSegment(address: 0x10000, length: 4096, rkey: 7))

        let two = Spec(opcode: BlockOpcode.write.rawValue, segments: [
            WireSegment(address: 1 << 40, length: 512, rkey: 1), WireSegment(address: 4096, length: 3584, rkey: 2)])
        #expect(try parse(two).get().segmentCount == 2)

        let inline = Spec(opcode: BlockOpcode.write.rawValue, flags: CommandFlags.inlineData.rawValue, segments: [],
                          length: 1024, inline: [UInt8](repeating: 0xab, count: 1024))
        let c = try parse(inline).get()
        #expect(c.inlineData.count == 1024 && c.inlineData.allSatisfy { $0 == 0xab })

        #expect((try? parse(Spec(opcode: BlockOpcode.flush.rawValue, segments: [], offset: 0, length: 0)).get()) != nil)
        #expect((try? parse(Spec(opcode: BlockOpcode.discard.rawValue, segments: [], length: 1 << 20)).get()) != nil)
        #expect((try? parse(Spec(opcode: BlockOpcode.writeZeroes.rawValue, flags: CommandFlags.unmap.rawValue,
                                 segments: [], length: 1 << 20)).get()) != nil)
        #expect((try? parse(Spec(opcode: BlockOpcode.getID.rawValue, segments: [WireSegment(address: 9, length: 20, rkey: 1)],
                                 offset: 0, length: 20)).get()) != nil)
        // The last sector of the export.
        #expect((try? parse(Spec(offset: (1 << 30) - 4096)).get()) != nil)
    }

    static let seg = WireSegment(address: 0x10000, length: 4096, rkey: 7)

    /// Each malformed capsule, with the status the target answers and whether the tag was recoverable.
    static let malformed: [(String, Spec, BlockStatus)] = [
        ("unknown opcode", Spec(opcode: 99), .unsupported),
        ("unknown flag", Spec(flags: 0x80), .invalid),
        ("reserved set", Spec(reserved: 1), .invalid),
        ("too many segments", Spec(segments: Array(repeating: seg, count: 9), length: 9 * 4096), .invalid),
        ("declared segments beyond bytes", Spec(declaredSegments: 2), .invalid),
        ("truncated segment", Spec(truncateBy: 1), .invalid),
        ("declared inline beyond bytes", Spec(declaredInline: 16), .invalid),
        ("inline above limit", Spec(declaredInline: 8192), .invalid),
        ("segments short of length", Spec(length: 8192), .invalid),
        ("empty segment", Spec(segments: [seg, WireSegment(address: 1, length: 0, rkey: 1)]), .invalid),
        ("segment wraps address space", Spec(segments: [WireSegment(address: UInt64.max - 100, length: 4096, rkey: 1)]), .invalid),
        ("unaligned offset", Spec(offset: 100), .invalid),
        ("unaligned length", Spec(segments: [WireSegment(address: 0x10000, length: 4000, rkey: 7)], length: 4000), .invalid),
        ("zero length", Spec(segments: [], length: 0), .invalid),
        ("beyond capacity", Spec(offset: 1 << 30), .outOfRange),
        ("offset + length overflows", Spec(offset: UInt64.max - 511), .outOfRange),
        ("above max I/O", Spec(segments: Array(repeating: WireSegment(address: 0, length: 1 << 18, rkey: 1), count: 5),
                               length: 5 << 18), .invalid),
        ("READ with inline", Spec(flags: CommandFlags.inlineData.rawValue, inline: [1, 2]), .invalid),
        ("inline WRITE with segments", Spec(opcode: BlockOpcode.write.rawValue, flags: CommandFlags.inlineData.rawValue,
                                            inline: [UInt8](repeating: 0, count: 4096)), .invalid),
        ("inline WRITE length mismatch", Spec(opcode: BlockOpcode.write.rawValue, flags: CommandFlags.inlineData.rawValue,
                                              segments: [], inline: [UInt8](repeating: 0, count: 512)), .invalid),
        ("FLUSH with a range", Spec(opcode: BlockOpcode.flush.rawValue, segments: []), .invalid),
        ("DISCARD with data", Spec(opcode: BlockOpcode.discard.rawValue), .invalid),
        ("DISCARD with unmap", Spec(opcode: BlockOpcode.discard.rawValue, flags: CommandFlags.unmap.rawValue, segments: []), .invalid),
        ("DISCARD too long", Spec(opcode: BlockOpcode.discard.rawValue, segments: [], length: 1 << 25 - 512 + 512), .invalid),
        ("GET_ID too long", Spec(opcode: BlockOpcode.getID.rawValue, segments: [WireSegment(address: 0, length: 21, rkey: 1)],
                                 offset: 0, length: 21), .invalid),
    ]

    @Test(arguments: 0..<malformed.count)
    func malformedCapsuleIsRefusedWithItsTag(index: Int) {
        let (name, spec, status) = Self.malformed[index]
        switch parse(spec) {
        case .success: Issue.record("\(name): accepted")
        case .failure(let f):
            #expect(f.status == status, "\(name): \(f.reason)")
            #expect(f.tag == 42, "\(name): tag lost")
        }
    }

    @Test func headerlessCapsuleHasNoTag() {
        let short = [UInt8](repeating: 0, count: 31)
        let r = short.withUnsafeBytes { CommandCapsule.parse($0.baseAddress!, byteCount: 31, limits: limits) }
        guard case .failure(let f) = r else { Issue.record("accepted"); return }
        #expect(f.tag == nil && f.status == .invalid)
    }

    @Test func unsupportedDiscardWhenExportHasNone() {
        var l = limits
        l.maxDiscardBytes = 0
        let b = bytes(Spec(opcode: BlockOpcode.discard.rawValue, segments: [], length: 4096))
        let r = b.withUnsafeBytes { CommandCapsule.parse($0.baseAddress!, byteCount: $0.count, limits: l) }
        guard case .failure(let f) = r else { Issue.record("accepted"); return }
        #expect(f.status == .unsupported)
    }

    @Test func responsesRoundTripAndShortOnesAreRefused() {
        var buf = [UInt8](repeating: 0, count: 16)
        buf.withUnsafeMutableBytes { ResponseCapsule.write($0.baseAddress!, tag: 77, status: .outOfRange, value: 9) }
        let r = buf.withUnsafeBytes { ResponseCapsule.read($0.baseAddress!, byteCount: 16) }
        #expect(r?.tag == 77 && r?.status == .outOfRange && r?.value == 9)
        #expect(buf.withUnsafeBytes { ResponseCapsule.read($0.baseAddress!, byteCount: 15) } == nil)
        buf[4] = 200
        #expect(buf.withUnsafeBytes { ResponseCapsule.read($0.baseAddress!, byteCount: 16) } == nil)
    }

    /// Random bytes (and mutated valid capsules) never crash the parser, and
    /// whatever it accepts satisfies the limits.
    @Test func fuzzParser() {
        var rng = SplitMix(seed: 0x5eed_0001)
        let valid = bytes(Spec())
        var accepted = 0
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 2 == 0 {
                b = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                b = valid
                for _ in 0..<(1 + Int(rng.next() % 4)) where !b.isEmpty {
                    b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            b.append(0)  // never an empty buffer pointer
            let r = b.withUnsafeBytes { CommandCapsule.parse($0.baseAddress!, byteCount: $0.count - 1, limits: limits) }
            if case .success(let c) = r {
                accepted += 1
                #expect(c.segmentCount <= limits.maxSegments)
                #expect(c.offset.addingReportingOverflow(UInt64(c.length)).partialValue <= limits.capacityBytes || c.opcode == .flush || c.opcode == .getID)
            }
        }
        print("fuzzParser: accepted \(accepted) of 20000 (seed 0x5eed0001)")
    }
}

/// A tiny deterministic PRNG for fuzzing.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
