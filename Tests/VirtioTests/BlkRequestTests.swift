import Testing
import Virtio
import VirtioDriver

/// A split queue pair over fresh memory, for request-format tests.
final class BlkHarness {
    let mem: DriverMemory
    let drv: SplitDriverQueue
    let dev: SplitQueue
    let chain = Chain(queueSize: 16)
    let limits = BlkDeviceLimits(capacitySectors: 1024, discard: true, maxDiscardSegments: 2,
                                 writeZeroes: true, maxWriteZeroesSegments: 1)

    init() throws {
        mem = try DriverMemory(size: 1 << 20)
        drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: false)
        dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
    }

    /// Writes `bytes` to a fresh buffer and returns it.
    func buffer(_ bytes: [UInt8]) -> DriverBuffer {
        let gpa = mem.allocate(max(bytes.count, 1))
        mem.write(bytes, at: gpa)
        return DriverBuffer(gpa: gpa, length: UInt32(bytes.count))
    }

    func writable(_ n: Int) -> DriverBuffer {
        DriverBuffer(gpa: mem.allocate(n), length: UInt32(n))
    }

    private var outstanding = false

    /// Completes the previous chain (if any), adds this one and pops it on the device side.
    func pop(readable: [DriverBuffer], writable: [DriverBuffer]) throws -> Chain {
        if outstanding {
            dev.pushUsed(chain.token, length: 0)
            _ = drv.popUsed()
        }
        outstanding = true
        drv.add(readable: readable, writable: writable)
        drv.publish()
        #expect(try dev.popAvail(into: chain))
        return chain
    }
}

func header(_ type: VirtioBlk.RequestType, sector: UInt64) -> [UInt8] {
    VirtioBlk.RequestHeader(type: type.rawValue, sector: sector).bytes
}

@Suite struct BlkRequestTests {
    /// §5.2.4: an IN or OUT request with more data segments than the device's
    /// limit is refused at parse (IOERR), before any capsule is built for it.
    /// Before: `parse` never looked at the segment count.
    @Test func moreDataSegmentsThanSegMaxAreRefused() throws {
        let h = try BlkHarness()
        var limits = h.limits
        limits.maxDataSegments = 2
        let status = h.writable(1)
        let three = (0..<3).map { _ in h.writable(512) }
        let read = try h.pop(readable: [h.buffer(header(.in, sector: 0))], writable: three + [status])
        #expect(throws: BlkRequestError.tooManySegments) { try BlkRequest.parse(read, limits: limits) }
        #expect(BlkRequestError.tooManySegments.status == .ioError)
        let pieces = (0..<3).map { _ in h.buffer([UInt8](repeating: 7, count: 512)) }
        let write = try h.pop(readable: [h.buffer(header(.out, sector: 0))] + pieces, writable: [h.writable(1)])
        #expect(throws: BlkRequestError.tooManySegments) { try BlkRequest.parse(write, limits: limits) }
        // At the limit it parses.
        let two = try h.pop(readable: [h.buffer(header(.out, sector: 0))] + Array(pieces.prefix(2)), writable: [h.writable(1)])
        #expect(try BlkRequest.parse(two, limits: limits).dataLength == 1024)
    }

    @Test func readRequest() throws {
        let h = try BlkHarness()
        let data = h.writable(4096), status = h.writable(1)
        let chain = try h.pop(readable: [h.buffer(header(.in, sector: 8))], writable: [data, status])
        let req = try BlkRequest.parse(chain, limits: h.limits)
        #expect(req.type == .in && req.sector == 8 && req.dataIsWritable)
        #expect(req.dataOffset == 0 && req.dataLength == 4096 && req.statusOffset == 4096)
        // Device fills the data and completes.
        for piece in req.dataSlice(in: chain) {
            piece.hostPointer.initializeMemory(as: UInt8.self, repeating: 0xAB, count: Int(piece.length))
        }
        req.complete(chain, status: .ok)
        #expect(h.mem.read(data.gpa, count: 4096).allSatisfy { $0 == 0xAB })
        #expect(h.mem.read(status.gpa, count: 1) == [0])
        #expect(req.usedLength == 4097)
        // Whatever the status: a failed IN reports (and so dirty-logs) the data it may have
        // written and the status byte.
    }

    @Test func writeRequestWithDataAndStatusSharingDescriptors() throws {
        let h = try BlkHarness()
        // Header and first data bytes in one descriptor; data + status in one writable descriptor is not
        // possible for OUT, so status is alone; data continues in a second readable descriptor.
        let payload = (0..<1024).map { UInt8(truncatingIfNeeded: $0) }
        let first = h.buffer(header(.out, sector: 1000) + payload[0..<100])
        let second = h.buffer(Array(payload[100...]))
        let chain = try h.pop(readable: [first, second], writable: [h.writable(1)])
        let req = try BlkRequest.parse(chain, limits: h.limits)
        #expect(req.type == .out && req.sector == 1000 && !req.dataIsWritable)
        #expect(req.dataOffset == 16 && req.dataLength == 1024)
        var got: [UInt8] = []
        for piece in req.dataSlice(in: chain) {
            got += UnsafeRawBufferPointer(start: piece.hostPointer, count: Int(piece.length))
        }
        #expect(got == payload)
        #expect(req.usedLength == 1)
        // Sector 1000 + 2 sectors = 1002 <= 1024: in range. Past the end: rejected.
        let bad = try h.pop(readable: [h.buffer(header(.out, sector: 1023) + payload)], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.outOfRange) { try BlkRequest.parse(bad, limits: h.limits) }
    }

    @Test func headerSplitAcrossDescriptors() throws {
        let h = try BlkHarness()
        let hdr = header(.in, sector: 0x0203)
        let chain = try h.pop(readable: [h.buffer(Array(hdr[0..<3])), h.buffer(Array(hdr[3..<9])), h.buffer(Array(hdr[9...]))],
                              writable: [h.writable(511), h.writable(2)])
        let req = try BlkRequest.parse(chain, limits: h.limits)
        #expect(req.sector == 0x0203 && req.type == .in)
        // Status byte is the last writable byte even when it shares a descriptor with data.
        #expect(req.dataLength == 512 && req.statusOffset == 512)
    }

    @Test func missingStatus() throws {
        let h = try BlkHarness()
        let chain = try h.pop(readable: [h.buffer(header(.out, sector: 0) + [UInt8](repeating: 1, count: 512))], writable: [])
        #expect(throws: BlkRequestError.missingStatus) { try BlkRequest.parse(chain, limits: h.limits) }
        #expect(BlkRequest.writeStatus(.ioError, to: chain) == 0)
    }

    @Test func statusNotWritable() throws {
        let h = try BlkHarness()
        // The trailing "status" byte is device-readable: there is no writable byte at all.
        let chain = try h.pop(readable: [h.buffer(header(.flush, sector: 0)), h.buffer([0])], writable: [])
        #expect(throws: BlkRequestError.missingStatus) { try BlkRequest.parse(chain, limits: h.limits) }
    }

    @Test func shortHeader() throws {
        let h = try BlkHarness()
        let chain = try h.pop(readable: [h.buffer(Array(header(.in, sector: 0)[0..<15]))], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.headerTooShort) { try BlkRequest.parse(chain, limits: h.limits) }
        #expect(BlkRequest.writeStatus(BlkRequestError.headerTooShort.status, to: chain) == 1)
    }

    @Test func sectorOverflow() throws {
        let h = try BlkHarness()
        for sector in [UInt64.max, UInt64.max / 512 + 1, UInt64.max - 7, 1025] {
            let chain = try h.pop(readable: [h.buffer(header(.in, sector: sector))], writable: [h.writable(512), h.writable(1)])
            #expect(throws: BlkRequestError.outOfRange) { try BlkRequest.parse(chain, limits: h.limits) }
        }
        // The last sector exactly: fine.
        let ok = try h.pop(readable: [h.buffer(header(.in, sector: 1023))], writable: [h.writable(512), h.writable(1)])
        #expect(try BlkRequest.parse(ok, limits: h.limits).sector == 1023)
        #expect(throws: BlkRequestError.outOfRange) {
            try BlkRequest.checkRange(sector: 1, sectors: UInt64.max, limits: h.limits)
        }
    }

    @Test func otherTypesAndErrors() throws {
        let h = try BlkHarness()
        // Data not a sector multiple.
        var chain = try h.pop(readable: [h.buffer(header(.in, sector: 0))], writable: [h.writable(100), h.writable(1)])
        #expect(throws: BlkRequestError.dataNotSectorMultiple) { try BlkRequest.parse(chain, limits: h.limits) }
        // Unknown type -> UNSUPP.
        chain = try h.pop(readable: [h.buffer(VirtioBlk.RequestHeader(type: 77, sector: 0).bytes)], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.unsupported(77)) { try BlkRequest.parse(chain, limits: h.limits) }
        #expect(BlkRequestError.unsupported(77).status == .unsupported)
        // FLUSH.
        chain = try h.pop(readable: [h.buffer(header(.flush, sector: 0))], writable: [h.writable(1)])
        #expect(try BlkRequest.parse(chain, limits: h.limits).dataLength == 0)
        // GET_ID: at most 20 bytes.
        chain = try h.pop(readable: [h.buffer(header(.getID, sector: 0))], writable: [h.writable(64), h.writable(1)])
        let id = try BlkRequest.parse(chain, limits: h.limits)
        #expect(id.dataIsWritable && id.dataLength == 20)
        // Read-only device: writes fail.
        var ro = h.limits; ro.readOnly = true
        chain = try h.pop(readable: [h.buffer(header(.out, sector: 0) + [UInt8](repeating: 0, count: 512))], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.readOnly) { try BlkRequest.parse(chain, limits: ro) }
        // DISCARD with two segments.
        let segs = VirtioBlk.DiscardWriteZeroesSegment(sector: 10, numSectors: 5).bytes
            + VirtioBlk.DiscardWriteZeroesSegment(sector: 100, numSectors: 8, flags: 1).bytes
        chain = try h.pop(readable: [h.buffer(header(.discard, sector: 0)), h.buffer(segs)], writable: [h.writable(1)])
        let d = try BlkRequest.parse(chain, limits: h.limits)
        #expect(d.segmentCount == 2)
        #expect(d.segment(1, in: chain) == VirtioBlk.DiscardWriteZeroesSegment(sector: 100, numSectors: 8, flags: 1))
        #expect(d.segment(2, in: chain) == nil)
        // WRITE_ZEROES over its segment limit; empty payload; ragged payload.
        chain = try h.pop(readable: [h.buffer(header(.writeZeroes, sector: 0) + segs)], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.badSegments) { try BlkRequest.parse(chain, limits: h.limits) }
        chain = try h.pop(readable: [h.buffer(header(.discard, sector: 0))], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.badSegments) { try BlkRequest.parse(chain, limits: h.limits) }
        chain = try h.pop(readable: [h.buffer(header(.discard, sector: 0) + [1, 2, 3])], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.badSegments) { try BlkRequest.parse(chain, limits: h.limits) }
        // DISCARD not negotiated.
        var nod = h.limits; nod.discard = false
        chain = try h.pop(readable: [h.buffer(header(.discard, sector: 0) + segs)], writable: [h.writable(1)])
        #expect(throws: BlkRequestError.unsupported(11)) { try BlkRequest.parse(chain, limits: nod) }
    }

    @Test func configSerialization() {
        var c = VirtioBlkConfig(capacity: 0x0102_0304_0506_0708)
        c.segMax = 126
        c.sizeMax = 1 << 20
        c.blockSize = 4096
        c.physicalBlockExp = 3
        c.optIOSize = 0x11223344
        c.writeback = 1
        c.numQueues = 4
        c.maxDiscardSectors = 0xAABBCCDD
        c.maxWriteZeroesSegments = 7
        c.writeZeroesMayUnmap = 1
        let b = c.serialize()
        #expect(b.count == 96)
        #expect(Array(b[0..<8]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(b[8..<12]) == [0, 0, 0x10, 0])
        #expect(Array(b[12..<16]) == [126, 0, 0, 0])
        #expect(Array(b[20..<24]) == [0, 0x10, 0, 0])
        #expect(b[24] == 3)
        #expect(Array(b[28..<32]) == [0x44, 0x33, 0x22, 0x11])
        #expect(b[32] == 1)
        #expect(Array(b[34..<36]) == [4, 0])
        #expect(Array(b[36..<40]) == [0xDD, 0xCC, 0xBB, 0xAA])
        #expect(Array(b[52..<56]) == [7, 0, 0, 0])
        #expect(b[56] == 1)
        var w = c
        let accepted = w.applyWrite(offset: 32, bytes: [0])
        #expect(accepted && w.writeback == 0)
        let rejected = w.applyWrite(offset: 0, bytes: [1])
        #expect(!rejected)
    }
}

@Suite struct NetFormatTests {
    @Test func headerRoundTrip() {
        var h = VirtioNet.Header()
        h.flags = VirtioNet.Header.flagNeedsCsum
        h.gsoType = VirtioNet.Header.gsoTCPv4
        h.hdrLen = 54; h.gsoSize = 1448; h.csumStart = 34; h.csumOffset = 16; h.numBuffers = 3
        let b = h.bytes
        #expect(b == [1, 1, 54, 0, 0xA8, 0x05, 34, 0, 16, 0, 3, 0])
        #expect(b.withUnsafeBytes { VirtioNet.Header(bytes: $0) } == h)
    }

    @Test func configSerialization() {
        var c = VirtioNetConfig(mac: [0x52, 0x54, 0, 1, 2, 3])
        c.maxVirtqueuePairs = 4
        c.mtu = 9000
        c.speed = 100_000
        c.duplex = VirtioNetConfig.duplexFull
        let b = c.serialize()
        #expect(b.count == 24)
        #expect(Array(b[0..<6]) == [0x52, 0x54, 0, 1, 2, 3])
        #expect(Array(b[6..<8]) == [1, 0])
        #expect(Array(b[8..<10]) == [4, 0])
        #expect(Array(b[10..<12]) == [0x28, 0x23])
        #expect(Array(b[12..<16]) == [0xA0, 0x86, 0x01, 0])
        #expect(b[16] == 1)
    }

    @Test func controlCommand() throws {
        let h = try BlkHarness()
        let ack = h.writable(1)
        let chain = try h.pop(readable: [h.buffer([NetControlCommand.Class.mq, NetControlCommand.Class.mqVQPairsSet]), h.buffer([4, 0])],
                              writable: [ack])
        let cmd = try #require(NetControlCommand.parse(chain))
        #expect(cmd.commandClass == NetControlCommand.Class.mq && cmd.command == NetControlCommand.Class.mqVQPairsSet)
        #expect(cmd.uint16Argument(in: chain) == 4)
        h.mem.write([0xFF], at: ack.gpa)
        cmd.acknowledge(chain, ack: NetControlCommand.ackOK)
        #expect(h.mem.read(ack.gpa, count: 1) == [0])
        let noAck = try h.pop(readable: [h.buffer([0, 0, 1])], writable: [])
        #expect(NetControlCommand.parse(noAck) == nil)
    }

    @Test func featureBits() {
        #expect(VirtioFeatures.version1 == 0x1_0000_0000)
        #expect(VirtioFeatures.ringPacked == 1 << 34)
        #expect(VirtioFeatures.indirectDesc == 0x1000_0000)
        #expect(VirtioFeatures.eventIdx == 0x2000_0000)
        #expect(VirtioFeatures.ringReset == 1 << 40)
        #expect(VirtioNet.Feature.mergeableRxBuffers == 0x8000)
        #expect(VirtioNet.Feature.ctrlVQ == 1 << 17 && VirtioNet.Feature.multiqueue == 1 << 22)
        #expect(VirtioBlk.Feature.flush == 0x200 && VirtioBlk.Feature.multiqueue == 0x1000)
        #expect(VirtioBlk.Feature.discard == 1 << 13 && VirtioBlk.Feature.writeZeroes == 1 << 14)
    }
}
