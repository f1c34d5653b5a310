import Testing
import Virtio
import VirtioDriver

/// A forged descriptor: `flags` are the split/packed flag bits (NEXT, WRITE, INDIRECT).
struct RawDesc: Sendable, CustomStringConvertible {
    var addr: UInt64, len: UInt32, flags: UInt16, next: UInt16 = 0
    var description: String { "{\(addr), \(len), \(flags), \(next)}" }
}

/// Where forged descriptors may point (chosen by the harness below).
enum Addr {
    /// A valid 64 KiB scratch area in guest memory.
    static let data: UInt64 = 0x40_0000
    /// A second scratch area holding the forged indirect table.
    static let table: UInt64 = 0x50_0000
    /// A region 8 GiB long that is never dereferenced (the walker reads
    /// descriptors, not buffers), for 2^32-sized buffers.
    static let huge: UInt64 = 1 << 40
}

let NEXT = RingLayout.descFlagNext, WRITE = RingLayout.descFlagWrite, INDIRECT = RingLayout.descFlagIndirect

/// One malformed-chain case: main descriptors (split: table slots 0...,
/// chained as given), an optional indirect table, and the expected outcome.
struct MalformedCase: Sendable, CustomTestStringConvertible {
    var name: String
    var descs: [RawDesc]
    var table: [RawDesc] = []
    var rules = ChainRules()
    var expected: VirtqueueError?
    var testDescription: String { name }
}

let malformedCases: [MalformedCase] = [
    .init(name: "descriptor points to itself", descs: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 0)],
          expected: .badRequest(.chainTooLong)),
    .init(name: "three-descriptor cycle", descs: [
        RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 1),
        RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 2),
        RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 0)], expected: .badRequest(.chainTooLong)),
    .init(name: "next == queue size", descs: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 16)],
          expected: .badRequest(.nextOutOfRange)),
    .init(name: "next == 0xFFFF", descs: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 0xFFFF)],
          expected: .badRequest(.nextOutOfRange)),
    .init(name: "nested indirect", descs: [RawDesc(addr: Addr.table, len: 32, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 1), RawDesc(addr: Addr.table, len: 32, flags: INDIRECT)],
          expected: .badRequest(.nestedIndirect)),
    .init(name: "indirect len not a multiple of 16", descs: [RawDesc(addr: Addr.table, len: 24, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: 0)], expected: .badRequest(.indirectLengthInvalid)),
    .init(name: "indirect len 0", descs: [RawDesc(addr: Addr.table, len: 0, flags: INDIRECT)],
          expected: .badRequest(.indirectLengthInvalid)),
    .init(name: "indirect len 2^32-16", descs: [RawDesc(addr: Addr.table, len: 0xFFFF_FFF0, flags: INDIRECT)],
          expected: .badRequest(.indirectTooLarge)),
    .init(name: "indirect with NEXT", descs: [RawDesc(addr: Addr.table, len: 16, flags: INDIRECT | NEXT, next: 1),
                                            RawDesc(addr: Addr.data, len: 8, flags: 0)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: 0)], expected: .badRequest(.indirectWithNext)),
    .init(name: "indirect not negotiated", descs: [RawDesc(addr: Addr.table, len: 16, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: 0)], rules: ChainRules(indirectAllowed: false),
          expected: .badRequest(.indirectNotNegotiated)),
    .init(name: "indirect table unmapped", descs: [RawDesc(addr: 0x7000_0000, len: 16, flags: INDIRECT)],
          expected: .badRequest(.indirectTableUnmapped)),
    .init(name: "indirect table overflows 2^64", descs: [RawDesc(addr: UInt64.max - 8, len: 16, flags: INDIRECT)],
          expected: .badRequest(.addressOverflow)),
    .init(name: "loop inside indirect table", descs: [RawDesc(addr: Addr.table, len: 32, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 1), RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 0)],
          expected: .badRequest(.chainTooLong)),
    .init(name: "indirect next beyond table", descs: [RawDesc(addr: Addr.table, len: 32, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 2), RawDesc(addr: Addr.data, len: 8, flags: 0)],
          expected: .badRequest(.nextOutOfRange)),
    .init(name: "2^32-1 byte buffer in a small region", descs: [RawDesc(addr: Addr.data, len: 0xFFFF_FFFF, flags: 0)],
          expected: .badRequest(.unmappedBuffer)),
    .init(name: "2^32-1 byte buffer that is mapped (control)", descs: [RawDesc(addr: Addr.huge, len: 0xFFFF_FFFF, flags: 0)],
          expected: nil),
    .init(name: "total length 2^32 (readable)", descs: [
        RawDesc(addr: Addr.huge, len: 0x8000_0000, flags: NEXT, next: 1),
        RawDesc(addr: Addr.huge, len: 0x8000_0000, flags: 0)], expected: .badRequest(.totalLengthOverflow)),
    .init(name: "total length 2^32 (readable + writable)", descs: [
        RawDesc(addr: Addr.huge, len: 0xFFFF_FFFF, flags: NEXT, next: 1),
        RawDesc(addr: Addr.data, len: 1, flags: WRITE)], expected: .badRequest(.totalLengthOverflow)),
    .init(name: "total length 2^32 via indirect", descs: [
        RawDesc(addr: Addr.huge, len: 0xFFFF_0000, flags: NEXT, next: 1),
        RawDesc(addr: Addr.table, len: 16, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.huge, len: 0x1_0000, flags: WRITE)], expected: .badRequest(.totalLengthOverflow)),
    .init(name: "readable after writable", descs: [
        RawDesc(addr: Addr.data, len: 8, flags: WRITE | NEXT, next: 1),
        RawDesc(addr: Addr.data, len: 8, flags: 0)], expected: .badRequest(.readableAfterWritable)),
    .init(name: "readable after zero-length writable", descs: [
        RawDesc(addr: Addr.data, len: 0, flags: WRITE | NEXT, next: 1),
        RawDesc(addr: Addr.data, len: 8, flags: 0)], expected: .badRequest(.readableAfterWritable)),
    .init(name: "readable in indirect table after direct writable", descs: [
        RawDesc(addr: Addr.data, len: 8, flags: WRITE | NEXT, next: 1),
        RawDesc(addr: Addr.table, len: 16, flags: INDIRECT)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: 0)], expected: .badRequest(.readableAfterWritable)),
    .init(name: "address outside every region", descs: [RawDesc(addr: 0x7000_0000, len: 8, flags: 0)],
          expected: .badRequest(.unmappedBuffer)),
    .init(name: "buffer runs off the end of a region", descs: [RawDesc(addr: Addr.data + 0xFFF8, len: 16, flags: 0)],
          expected: .badRequest(.unmappedBuffer)),
    .init(name: "address + len overflows 2^64", descs: [RawDesc(addr: UInt64.max - 10, len: 100, flags: WRITE)],
          expected: .badRequest(.addressOverflow)),
    .init(name: "address + len overflows 2^64 (2^32-1 len)", descs: [RawDesc(addr: 0xFFFF_FFFF_0000_0002, len: 0xFFFF_FFFF, flags: 0)],
          expected: .badRequest(.addressOverflow)),
    .init(name: "valid direct + indirect (control)", descs: [
        RawDesc(addr: Addr.data, len: 16, flags: NEXT, next: 1),
        RawDesc(addr: Addr.table, len: 32, flags: INDIRECT | WRITE)],
          table: [RawDesc(addr: Addr.data, len: 8, flags: NEXT, next: 1), RawDesc(addr: Addr.data, len: 1, flags: WRITE)],
          expected: nil),
]

/// Guest memory for forged rings: the driver's memfd plus a huge region that
/// is never dereferenced.
func forgeryMemory() throws -> (DriverMemory, GuestMemory) {
    let mem = try DriverMemory(regions: [(0x10_0000, 1 << 20), (Addr.data, 0x1_0000), (Addr.table, 0x1_0000)])
    var regions = mem.guestMemory.regions
    regions.append(GuestMemory.Region(guestPhysAddr: Addr.huge, size: 1 << 33, userAddr: 1 << 60,
                                      hostAddress: UnsafeMutableRawPointer(bitPattern: 0x1000_0000_0000)!))
    return (mem, try GuestMemory(regions: regions))
}

@Suite struct MalformedChainTests {
    @Test(arguments: malformedCases)
    func split(_ c: MalformedCase) throws {
        let (mem, gm) = try forgeryMemory()
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false, rules: c.rules)
        for (i, d) in c.descs.enumerated() {
            drv.writeDescriptor(UInt16(i), addr: d.addr, len: d.len, flags: d.flags, next: d.next)
        }
        for (i, d) in c.table.enumerated() {
            drv.writeDescriptor(at: Addr.table + UInt64(16 * i), addr: d.addr, len: d.len, flags: d.flags, next: d.next)
        }
        drv.writeAvailRing(slot: 0, head: 0)
        drv.forceAvailIdx(1)
        let chain = Chain(queueSize: 16)
        do {
            #expect(try dev.popAvail(into: chain))
            #expect(c.expected == nil, "accepted a malformed chain")
        } catch {
            #expect(error == c.expected)
        }
        #expect(chain.head == 0)
        // A bad request fails only itself: complete it, and the queue carries on.
        dev.pushUsed(chain.token, length: 0)
        #expect(!dev.isBroken)
        drv.writeDescriptor(5, addr: Addr.data, len: 8, flags: 0, next: 0)
        drv.writeAvailRing(slot: 1, head: 5)
        drv.forceAvailIdx(2)
        #expect(try dev.popAvail(into: chain))
        #expect(chain.head == 5 && chain.readableBytes == 8)
    }

    @Test(arguments: malformedCases.filter { c in
        // Packed chains are consecutive slots: cases built on `next` values do not apply.
        !c.descs.contains { $0.flags & NEXT != 0 && $0.next != 1 } })
    func packed(_ c: MalformedCase) throws {
        let (mem, gm) = try forgeryMemory()
        let drv = PackedDriverQueue(memory: mem, size: 16, eventIdx: false)
        let dev = try PackedQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false, rules: c.rules)
        for (i, d) in c.table.enumerated() {
            // Packed indirect tables are consecutive: NEXT is ignored, only WRITE and INDIRECT matter.
            drv.writeDescriptor(at: Addr.table + UInt64(16 * i), addr: d.addr, len: d.len, id: 0, flags: d.flags)
        }
        drv.addRaw(c.descs.map { ($0.addr, $0.len, $0.flags) }, id: 9)
        let chain = Chain(queueSize: 16)
        var expected = c.expected
        // Split-only failures inside indirect tables (next-linked) do not exist in packed tables.
        if expected == .badRequest(.chainTooLong) || expected == .badRequest(.nextOutOfRange) { expected = nil }
        do {
            #expect(try dev.popAvail(into: chain))
            #expect(expected == nil, "accepted a malformed chain")
        } catch {
            #expect(error == expected)
        }
        #expect(chain.token == UsedToken(id: 9, descriptorCount: UInt16(c.descs.count)))
        dev.pushUsed(chain.token, length: 0)
        #expect(drv.popUsed()?.id == 9)
        // The whole bad chain was consumed: the next one pops cleanly.
        drv.addRaw([(Addr.data, 8, 0)], id: 3)
        #expect(try dev.popAvail(into: chain))
        #expect(chain.head == 3 && chain.readableBytes == 8)
    }

    /// `walkChain(head:)` applies exactly the rules `popAvail` does, and never
    /// touches the avail ring.
    @Test(arguments: malformedCases)
    func splitWalkChain(_ c: MalformedCase) throws {
        let (mem, gm) = try forgeryMemory()
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false, rules: c.rules)
        for (i, d) in c.descs.enumerated() {
            drv.writeDescriptor(UInt16(i), addr: d.addr, len: d.len, flags: d.flags, next: d.next)
        }
        for (i, d) in c.table.enumerated() {
            drv.writeDescriptor(at: Addr.table + UInt64(16 * i), addr: d.addr, len: d.len, flags: d.flags, next: d.next)
        }
        drv.forceAvailIdx(3)                     // garbage the walk must not look at
        let chain = Chain(queueSize: 16)
        do {
            try dev.walkChain(head: 0, into: chain)
            #expect(c.expected == nil, "accepted a malformed chain")
        } catch {
            #expect(error == c.expected)
        }
        #expect(chain.head == 0)
        #expect(dev.lastAvailIdx == 0 && dev.counters.popped == 0 && !dev.isBroken)
        #expect(dev.counters.badRequests == (c.expected == nil ? 0 : 1))
    }

    @Test func walkChainHeadOutOfRangeIsABadRequest() throws {
        let (mem, gm) = try forgeryMemory()
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false)
        #expect(throws: VirtqueueError.badRequest(.nextOutOfRange)) { try dev.walkChain(head: 16, into: Chain(queueSize: 16)) }
        #expect(throws: VirtqueueError.badRequest(.nextOutOfRange)) { try dev.walkChain(head: .max, into: Chain(queueSize: 16)) }
        #expect(!dev.isBroken && dev.lastAvailIdx == 0)
    }

    @Test func availIndexJumpBreaksQueue() throws {
        let (mem, gm) = try forgeryMemory()
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false, startIndex: 65530)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false, lastAvailIdx: 65530)
        let chain = Chain(queueSize: 16)
        drv.forceAvailIdx(65530 &+ 16)          // exactly a full ring: fine
        for i in 0..<16 { drv.writeAvailRing(slot: 65530 &+ UInt16(i), head: 0) }
        drv.writeDescriptor(0, addr: Addr.data, len: 8, flags: 0, next: 0)
        for _ in 0..<16 {
            #expect(try dev.popAvail(into: chain))
            dev.pushUsed(chain.token, length: 0)
        }
        #expect(try !dev.popAvail(into: chain))
        #expect(dev.lastAvailIdx == 10)          // wrapped past 65535
        drv.forceAvailIdx(10 &+ 17)              // 17 ahead of the device: corrupt
        #expect(throws: VirtqueueError.queueBroken(.availIndexJump)) { try dev.popAvail(into: chain) }
        #expect(dev.isBroken)
        // Stays broken, and stops touching the rings.
        drv.forceAvailIdx(65530 &+ 2)
        #expect(throws: VirtqueueError.queueBroken(.availIndexJump)) { try dev.popAvail(into: chain) }
        #expect(!dev.needsNotification())
        #expect(dev.counters.broken == 1)
    }

    @Test func headOutOfRangeBreaksQueue() throws {
        let (mem, gm) = try forgeryMemory()
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false)
        drv.writeAvailRing(slot: 0, head: 16)
        drv.forceAvailIdx(1)
        #expect(throws: VirtqueueError.queueBroken(.headOutOfRange)) { try dev.popAvail(into: Chain(queueSize: 16)) }
    }

    @Test func packedChainLongerThanRingBreaksQueue() throws {
        let (mem, gm) = try forgeryMemory()
        let drv = PackedDriverQueue(memory: mem, size: 8, eventIdx: false)
        let dev = try PackedQueue(size: 8, addresses: drv.addresses, memory: gm, eventIdx: false)
        // Eight available descriptors, all with NEXT: the chain never ends.
        drv.addRaw(Array(repeating: (Addr.data, 8, NEXT), count: 8), id: 1)
        #expect(throws: VirtqueueError.queueBroken(.packedChainTooLong)) { try dev.popAvail(into: Chain(queueSize: 8)) }
        #expect(dev.isBroken)
    }

    @Test func tooManySegmentsForScratch() throws {
        let (mem, gm) = try forgeryMemory()
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: gm, eventIdx: false)
        drv.add(readable: (0..<4).map { DriverBuffer(gpa: Addr.data + UInt64($0 * 64), length: 64) }, writable: [])
        drv.publish()
        #expect(throws: VirtqueueError.badRequest(.tooManySegments)) { try dev.popAvail(into: Chain(capacity: 3)) }
    }
}
