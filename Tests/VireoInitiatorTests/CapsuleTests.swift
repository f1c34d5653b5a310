import Testing
@testable import Virtio
import VireoAuth
import VireoWire
@testable import VireoInitiator

/// Guest memory for building chains by hand: `size` bytes at guest address `base`.
final class FakeGuest {
    let base: UInt64
    let host: UnsafeMutableRawBufferPointer
    init(base: UInt64, size: Int) {
        self.base = base
        host = .allocate(byteCount: size, alignment: 4096)
        host.initializeMemory(as: UInt8.self, repeating: 0)
    }
    deinit { host.deallocate() }

    func pointer(_ gpa: UInt64) -> UnsafeMutableRawPointer { host.baseAddress! + Int(gpa - base) }

    /// A chain of `readable` then `writable` segments (gpa, length).
    func chain(readable: [(UInt64, UInt32)], writable: [(UInt64, UInt32)]) -> Chain {
        let c = Chain(capacity: 64)
        c.reset()
        for (gpa, len) in readable {
            c.storage[c.count] = Chain.Segment(hostPointer: pointer(gpa), guestAddr: gpa, length: len, isWritable: false)
            c.count += 1
            c.readableSegmentCount = c.count
            c.readableBytes += len
        }
        for (gpa, len) in writable {
            c.storage[c.count] = Chain.Segment(hostPointer: pointer(gpa), guestAddr: gpa, length: len, isWritable: true)
            c.count += 1
            c.writableBytes += len
        }
        return c
    }

    func header(at gpa: UInt64, type: VirtioBlk.RequestType, sector: UInt64) {
        let h = VirtioBlk.RequestHeader(type: type.rawValue, sector: sector).bytes
        pointer(gpa).copyMemory(from: h, byteCount: h.count)
    }
}

@Suite struct RegionTableTests {
    let table: GuestRegionTable = {
        var t = GuestRegionTable()
        t.insert(.init(guestPhysAddr: 0x10_0000, size: 0x10_0000, rkey: 2, lkey: 20))
        t.insert(.init(guestPhysAddr: 0, size: 0x8_0000, rkey: 1, lkey: 10))
        t.insert(.init(guestPhysAddr: 0x1_0000_0000, size: 0x1000, rkey: 3, lkey: 30))
        return t
    }()

    @Test func sortedAndFound() {
        #expect(table.entries.map(\.rkey) == [1, 2, 3])
        #expect(table.lookup(address: 0, length: 1)?.rkey == 1)
        #expect(table.lookup(address: 0x7_ffff, length: 1)?.rkey == 1)
        #expect(table.lookup(address: 0x10_0000, length: 0x10_0000)?.rkey == 2)
        #expect(table.lookup(address: 0x1_0000_0fff, length: 1)?.lkey == 30)
    }

    @Test func boundariesAndUnknownAddresses() {
        #expect(table.lookup(address: 0x8_0000, length: 1) == nil)          // gap after region 1
        #expect(table.lookup(address: 0x7_ff00, length: 0x200) == nil)      // runs past region 1
        #expect(table.lookup(address: 0x1f_ffff, length: 2) == nil)         // runs past region 2
        #expect(table.lookup(address: 0x1_0000_1000, length: 1) == nil)     // past the last
        #expect(table.lookup(address: UInt64.max, length: UInt64.max) == nil)
        #expect(table.wireSegment(guestAddr: 0x10_0200, length: 512) == WireSegment(address: 0x10_0200, length: 512, rkey: 2))
        #expect(table.wireSegment(guestAddr: 0x9_0000, length: 512) == nil)
        #expect(table.wireSegment(guestAddr: 0x10_0000, length: 0) == nil)
        #expect(GuestRegionTable().lookup(address: 0, length: 1) == nil)
    }

    /// The walker's region index names the entry in O(1); a wrong or stale hint falls back
    /// to the search and still finds the right key, or none.
    @Test func regionHintIsUsedAndNeverTrusted() {
        #expect(table.lookup(address: 0x10_0200, length: 512, hint: 1)?.rkey == 2)
        #expect(table.lookup(address: 0x10_0200, length: 512, hint: 0)?.rkey == 2, "wrong hint: found by search")
        #expect(table.lookup(address: 0x10_0200, length: 512, hint: 999)?.rkey == 2, "hint out of range: found by search")
        #expect(table.lookup(address: 0x9_0000, length: 512, hint: 0) == nil, "a hint never widens a region")
        #expect(table.lookup(address: 0x7_ff00, length: 0x200, hint: 0) == nil, "nor lets a range run past it")
        #expect(table.wireSegment(guestAddr: 0x1_0000_0000, length: 16, hint: 2)?.rkey == 3)
    }

    @Test func removeAndReplace() {
        var t = table
        t.remove(guestPhysAddr: 0x10_0000)
        #expect(t.lookup(address: 0x10_0000, length: 1) == nil)
        t.insert(.init(guestPhysAddr: 0, size: 0x1000, rkey: 9, lkey: 90))
        #expect(t.entries.count == 2 && t.lookup(address: 0, length: 1)?.rkey == 9)
    }
}

@Suite struct CapsuleTests {
    // Two adjacent regions: [0x0, 0x10000) rkey 11 and [0x10000, 0x20000) rkey 22.
    let guest = FakeGuest(base: 0, size: 0x20000)
    let regions: GuestRegionTable = {
        var t = GuestRegionTable()
        t.insert(.init(guestPhysAddr: 0, size: 0x10000, rkey: 11, lkey: 111))
        t.insert(.init(guestPhysAddr: 0x10000, size: 0x10000, rkey: 22, lkey: 222))
        return t
    }()
    let limits = CapsuleLimits(maxSegments: 8, maxIOBytes: 1 << 20, maxInlineBytes: 4096, maxInlinePieces: 4,
                               maxDiscardBytes: 1 << 20, maxWriteZeroesBytes: 1 << 20)
    let blk = BlkDeviceLimits(capacitySectors: 1 << 20, discard: true, writeZeroes: true)
    /// The capsule buffer (freed with the suite instance: LeakSanitizer runs these tests).
    final class CapsuleBuffer {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 32 + 16 * 8, alignment: 64)
        deinit { bytes.deallocate() }
    }
    let capsuleBuffer = CapsuleBuffer()
    var capsule: UnsafeMutableRawBufferPointer { capsuleBuffer.bytes }

    func build(_ chain: Chain, tag: UInt32 = 5) throws -> CapsuleBuilder.Outcome {
        let r = try BlkRequest.parse(chain, limits: blk)
        return CapsuleBuilder.build(r, chain: chain, regions: regions, limits: limits, tag: tag, into: capsule.baseAddress!)
    }

    /// Validates what was built the way the target will.
    func parsed(_ n: Int) -> CommandCapsule? {
        let l = CommandLimits(capacityBytes: (1 << 20) * 512, maxSegments: 8, maxIOBytes: 1 << 20, maxInlineBytes: 4096,
                              maxDiscardBytes: 1 << 20, maxWriteZeroesBytes: 1 << 20)
        // Inline data is not in the buffer (it is gathered from guest memory): validate the header alone.
        return try? CommandCapsule.parse(UnsafeRawPointer(capsule.baseAddress!), byteCount: n, limits: l).get()
    }

    @Test func readAcrossTwoRegionsNamesEachRegionsKey() throws {
        guest.header(at: 0x100, type: .in, sector: 8)
        // 4 KiB ending in region 1, 4 KiB starting region 2 (the walker splits at the boundary).
        let c = guest.chain(readable: [(0x100, 16)], writable: [(0xf000, 0x1000), (0x10000, 0x1000), (0x200, 1)])
        let out = try build(c, tag: 7)
        #expect(out == .send(byteCount: 32 + 2 * 16, inlinePieces: 0))
        let cap = try #require(parsed(64))
        #expect(cap.opcode == .read && cap.tag == 7 && cap.offset == 8 * 512 && cap.length == 0x2000)
        #expect(cap.segment(0) == WireSegment(address: 0xf000, length: 0x1000, rkey: 11))
        #expect(cap.segment(1) == WireSegment(address: 0x10000, length: 0x1000, rkey: 22))
    }

    @Test func unknownAddressFailsWithIOERR() throws {
        var small = GuestRegionTable()
        small.insert(.init(guestPhysAddr: 0, size: 0x10000, rkey: 11, lkey: 111))
        guest.header(at: 0x100, type: .in, sector: 0)
        let c = guest.chain(readable: [(0x100, 16)], writable: [(0x10000, 512), (0x200, 1)])
        let r = try BlkRequest.parse(c, limits: blk)
        #expect(CapsuleBuilder.build(r, chain: c, regions: small, limits: limits, tag: 1, into: capsule.baseAddress!)
            == .complete(.ioError))
    }

    @Test func tooManySegmentsOrBytesFail() throws {
        guest.header(at: 0x100, type: .in, sector: 0)
        let many = (0..<9).map { (UInt64(0x1000 + $0 * 0x1000), UInt32(512)) }
        #expect(try build(guest.chain(readable: [(0x100, 16)], writable: many + [(0x200, 1)])) == .complete(.ioError))
        var tight = limits
        tight.maxIOBytes = 4096
        let c = guest.chain(readable: [(0x100, 16)], writable: [(0x1000, 8192), (0x200, 1)])
        let r = try BlkRequest.parse(c, limits: blk)
        #expect(CapsuleBuilder.build(r, chain: c, regions: regions, limits: tight, tag: 1, into: capsule.baseAddress!)
            == .complete(.ioError))
    }

    /// A capsule slot holds the largest command any connection can be
    /// granted, so a reconnect that grants more segments than the first
    /// connect cannot make one slot's capsule overwrite its neighbour's.
    /// Before: the stride was sized from the first connection's grant.
    @Test(arguments: [UInt16(1), 8, 64, TargetConnector.wantedSegments])
    func capsuleSlotHoldsEveryAcceptableGrant(_ first: UInt16) throws {
        // Whole-memory mode asks for the most segments (on windows it asks for fewer).
        let config = try DiskConfig.parse(diskOption: "socket=/tmp/x.sock,target=10.99.0.1:4420,export=vol0,remote-access=whole-memory")
        let request = TargetConnector(config: config, credentials: .fixed(InitiatorCredentials(hostName: "h"))).request(queue: 0)
        func grant(_ segments: UInt16) -> BlockGeometry {
            BlockGeometry(capacityBytes: 1 << 30, blockSize: 512, flags: [.flush], maxDiscardBytes: 0,
                          maxWriteZeroesBytes: 0, queueDepth: 32, maxSegments: segments, maxIOBytes: 1 << 20,
                          maxInlineBytes: 4096, optimalIOBytes: 4096)
        }
        // Whatever the first connection was granted, every grant the geometry
        // check lets through later fits the slot; one above what was asked is refused.
        for segments in [first, TargetConnector.wantedSegments] {
            let g = try BlockGeometry(decoding: grant(segments).encoded(), requested: request)
            #expect(RemoteQueue.capsuleFits(CapsuleLimits(geometry: g, maxInlinePieces: TargetConnector.inlinePieces)))
        }
        #expect(throws: WireError.self) {
            _ = try BlockGeometry(decoding: grant(TargetConnector.wantedSegments + 1).encoded(), requested: request)
        }
        #expect(!RemoteQueue.capsuleFits(CapsuleLimits(maxSegments: Int(TargetConnector.wantedSegments) + 4, maxIOBytes: 1 << 20,
                                                       maxInlineBytes: 0, maxInlinePieces: 0, maxDiscardBytes: 0,
                                                       maxWriteZeroesBytes: 0)))
    }

    @Test func smallWriteGoesInlineAsGuestPieces() throws {
        guest.header(at: 0x100, type: .out, sector: 3)
        let c = guest.chain(readable: [(0x100, 16), (0x1000, 512), (0x10000, 512)], writable: [(0x200, 1)])
        #expect(try build(c) == .send(byteCount: 32, inlinePieces: 2))
        // Header says inline, with the data length; the data itself is not in the buffer.
        let p = capsule.baseAddress!
        #expect(p.load(fromByteOffset: 0, as: UInt8.self) == BlockOpcode.write.rawValue)
        #expect(p.load(fromByteOffset: 1, as: UInt8.self) == CommandFlags.inlineData.rawValue)
        #expect(p.loadUnaligned(fromByteOffset: 20, as: UInt32.self) == 1024)
        #expect(p.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == 3 * 512)
    }

    @Test func largeOrFragmentedWritesUseSegments() throws {
        guest.header(at: 0x100, type: .out, sector: 0)
        let big = guest.chain(readable: [(0x100, 16), (0x1000, 8192)], writable: [(0x200, 1)])
        #expect(try build(big) == .send(byteCount: 48, inlinePieces: 0))
        #expect(parsed(48)?.segment(0) == WireSegment(address: 0x1000, length: 8192, rkey: 11))
        let pieces = (0..<5).map { (UInt64(0x1000 + $0 * 0x1000), UInt32(512)) }
        let frag = guest.chain(readable: [(0x100, 16)] + pieces, writable: [(0x200, 1)])
        #expect(try build(frag) == .send(byteCount: 32 + 5 * 16, inlinePieces: 0))
        #expect(parsed(112)?.opcode == .write)
    }

    @Test func flushGetIDAndEmptyRead() throws {
        guest.header(at: 0x100, type: .flush, sector: 99)
        #expect(try build(guest.chain(readable: [(0x100, 16)], writable: [(0x200, 1)])) == .send(byteCount: 32, inlinePieces: 0))
        #expect(parsed(32)?.opcode == .flush)
        guest.header(at: 0x100, type: .getID, sector: 0)
        #expect(try build(guest.chain(readable: [(0x100, 16)], writable: [(0x300, 20), (0x200, 1)]))
            == .send(byteCount: 48, inlinePieces: 0))
        #expect(parsed(48).map { ($0.opcode, $0.length) } ?? (.read, 0) == (.getID, 20))
        guest.header(at: 0x100, type: .in, sector: 0)
        #expect(try build(guest.chain(readable: [(0x100, 16)], writable: [(0x200, 1)])) == .complete(.ok))
    }

    @Test func discardAndWriteZeroes() throws {
        func seg(_ sector: UInt64, _ n: UInt32, _ flags: UInt32) {
            let b = VirtioBlk.DiscardWriteZeroesSegment(sector: sector, numSectors: n, flags: flags).bytes
            guest.pointer(0x400).copyMemory(from: b, byteCount: 16)
        }
        guest.header(at: 0x100, type: .writeZeroes, sector: 0)
        seg(16, 8, VirtioBlk.DiscardWriteZeroesSegment.flagUnmap)
        let c = guest.chain(readable: [(0x100, 16), (0x400, 16)], writable: [(0x200, 1)])
        #expect(try build(c) == .send(byteCount: 32, inlinePieces: 0))
        let wz = try #require(parsed(32))
        #expect(wz.opcode == .writeZeroes && wz.flags == .unmap && wz.offset == 16 * 512 && wz.length == 4096)
        guest.header(at: 0x100, type: .discard, sector: 0)
        seg(0, 1, 0)
        #expect(try build(c) == .send(byteCount: 32, inlinePieces: 0))
        #expect(parsed(32)?.opcode == .discard)
        seg(0, 1, VirtioBlk.DiscardWriteZeroesSegment.flagUnmap)      // discard takes no flags
        #expect(try build(c) == .complete(.unsupported))
        seg(0, 4096, 0)                                               // 2 MiB > max discard
        #expect(try build(c) == .complete(.ioError))
    }
}
