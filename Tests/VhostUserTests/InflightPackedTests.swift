import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// INFLIGHT_SHMFD for packed rings (`InflightPackedQueue`).
@Suite(.serialized) struct InflightPackedTests {
    /// Writes held "on the wire" while flushes behind them complete (so the
    /// flushes' used descriptors overwrite ring slots of the held chains),
    /// then the connection dies. After a reconnect with SET_INFLIGHT_FD and a
    /// stale SET_VRING_BASE (QEMU cannot ask a dead back-end for the packed
    /// positions), the writes are resubmitted from the record's descriptor
    /// copies in fetch order, complete with the right data, and the ring
    /// carries on where the driver is.
    @Test func resubmitAfterReconnectWithOverwrittenSlots() throws {
        let rig = try BlockRig(tag: "inflight-packed", queues: 1)
        var fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        #expect(fe.features & VirtioFeatures.ringPacked != 0)
        try fe.setMemTable(rig.memory)
        let inflight = try fe.inflightBuffer(numQueues: 1, queueSize: 16)
        #expect(inflight.descriptor.mmapSize == UInt64(InflightRegion.queueRegionSize(queueSize: 16, packed: true)))
        let q = PackedDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpPackedRing(0, driver: q)

        // Move the positions off zero first: two rounds through most of the ring.
        for _ in 0..<5 {
            q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
            fe.kickPacked(0)
            #expect(fe.waitForPackedUsed(0, count: 1).count == 1)
        }
        rig.device.holdCompletions(true, exceptFlushes: true)
        var writes: [(BlockRequest, UInt16, [UInt8])] = []
        for i in 0..<2 {
            let data = pattern(2048, seed: UInt8(40 + i))
            let w = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: UInt64(i * 4), dataLength: 2048)
            rig.memory.write(data, at: w.data)
            writes.append((w, q.add(w, write: true), data))
        }
        for _ in 0..<2 {
            q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        }
        fe.kickPacked(0)
        // The flushes complete: their used descriptors land in the first
        // write's ring slots (the used position was there).
        #expect(fe.waitForPackedUsed(0, count: 2).count == 2)
        #expect(waitUntil { rig.device.heldCount == 2 })
        let view = try MemoryMapping(fd: inflight.fd, offset: 0, count: Int(inflight.descriptor.mmapSize))
        func inflightEntries() -> Int {
            (0..<16).filter { view.baseAddress.load(fromByteOffset: 32 + 32 * $0, as: UInt8.self) == 1 }.count
        }
        #expect(inflightEntries() == 2)

        // The back-end's peer "crashes": nothing completed.
        rig.device.holdCompletions(false)
        try rig.reconnect()
        fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        try fe.setMemTable(rig.memory)
        try fe.setInflightBuffer(inflight.descriptor, fd: inflight.fd)
        try fe.setUpPackedRing(0, driver: q, base: 0x8000_8000)
        let used = fe.waitForPackedUsed(0, count: 2)
        #expect(used.map(\.id) == writes.map(\.1))
        for (i, (w, _, data)) in writes.enumerated() {
            #expect(rig.memory.read(w.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
            #expect(Array(rig.device.contents[(i * 2048)..<((i + 1) * 2048)]) == data)
        }
        #expect(inflightEntries() == 0)
        // New requests after the resubmitted ones; the positions agree with the driver.
        q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe.kickPacked(0)
        #expect(fe.waitForPackedUsed(0, count: 1).count == 1)
        #expect(try fe.vringBase(0) == VhostUserFrontend.packedBase(availSlot: q.nextAvail, availWrap: q.availWrapCounter,
                                                                     usedSlot: q.nextUsed, usedWrap: q.usedWrapCounter))
    }

    /// A ring of 8 with chains popped and tracked straight on the record.
    struct Ring {
        let mem: DriverMemory
        let drv: PackedDriverQueue
        let dev: PackedQueue
        let region: InflightRegion
        let record: InflightPackedQueue
        let chain = Chain(queueSize: 8)
        let buffer: UInt64

        init() throws {
            mem = try DriverMemory(size: 1 << 20)
            drv = PackedDriverQueue(memory: mem, size: 8, eventIdx: false)
            dev = try PackedQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
            region = try InflightRegion(numQueues: 1, queueSize: 8, packed: true)
            record = try #require(region.packedQueue(0))
            buffer = mem.allocate(4096, alignment: 4096)
            _ = try record.recover(queue: dev)   // a fresh region: initialised
        }

        /// Adds and pops a chain of `n` descriptors; returns (buffer id, head entry).
        func pop(descriptors n: Int, counter: UInt64) throws -> (id: UInt16, entry: UInt16) {
            let bufs = (0..<n).map { DriverBuffer(gpa: buffer + UInt64($0 * 64), length: 64) }
            let id = try #require(drv.add(readable: [], writable: bufs))
            #expect(try dev.popAvail(into: chain))
            let e = record.markPopped(queue: dev, descriptorCount: chain.token.descriptorCount, counter: counter)
            #expect(e != InflightPackedQueue.none)
            return (id, e)
        }

        /// The queue a restarted back-end builds from a stale SET_VRING_BASE.
        func restarted() throws -> PackedQueue {
            try PackedQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
        }
    }

    /// A completion interrupted before its used descriptor was published:
    /// the used position rolls back and the request is resubmitted.
    @Test func interruptedBeforePublish() throws {
        let r = try Ring()
        let a = try r.pop(descriptors: 3, counter: 1)
        let b = try r.pop(descriptors: 2, counter: 2)
        r.record.prePut(entry: b.entry, usedStateAfter: 0x8000 | 2)
        let rec = try r.record.recover(queue: try r.restarted())
        #expect(rec.usedState == 0x8000)
        #expect(rec.availState == 0x8000 | 5)
        #expect(rec.chains.map(\.entry) == [a.entry, b.entry])
        #expect(rec.chains.map { $0.descriptors.count } == [3, 2])
        #expect(rec.chains.map { $0.descriptors.last?.id } == [a.id, b.id])
        #expect(rec.nextCounter == 3)
    }

    /// A completion interrupted after its used descriptor was published
    /// (the driver may already have seen it): it is done, not resubmitted.
    @Test func interruptedAfterPublish() throws {
        let r = try Ring()
        let a = try r.pop(descriptors: 3, counter: 1)
        let b = try r.pop(descriptors: 2, counter: 2)
        r.record.prePut(entry: b.entry, usedStateAfter: 0x8000 | 2)
        r.dev.addUsed(UsedToken(id: b.id, descriptorCount: 2), length: 0)
        let rec = try r.record.recover(queue: try r.restarted())
        #expect(rec.usedState == 0x8000 | 2)
        #expect(rec.availState == 0x8000 | 5)
        #expect(rec.chains.map(\.entry) == [a.entry])
        #expect(!r.record.isInflight(entry: b.entry))
        // The copies survived the used descriptor written over a's first slot.
        let copies = try #require(rec.chains.first?.descriptors)
        #expect(copies.map(\.addr) == (0..<3).map { r.buffer + UInt64($0 * 64) })
        #expect(copies.last?.id == a.id)
    }

    /// A completion that crossed the ring's end, cut inside postPut between
    /// old_used's slot and wrap stores: the head is already out of flight,
    /// so it is done, whatever the ring slot at the half-written old
    /// position holds (here a driver descriptor of the previous lap).
    @Test func interruptedInsidePostPut() throws {
        let r = try Ring()
        // Move the positions to slot 6: two 3-descriptor chains completed in order.
        for k in 0..<2 {
            let x = try r.pop(descriptors: 3, counter: UInt64(k + 1))
            r.record.prePut(entry: x.entry, usedStateAfter: 0x8000 | UInt16(3 * (k + 1)))
            r.dev.addUsed(UsedToken(id: x.id, descriptorCount: 3), length: 0)
            r.record.postPut(entry: x.entry)
            _ = r.drv.popUsed()
        }
        // A 3-descriptor chain at slots 6, 7, 0 completes: used 6/wrap 1 -> 1/wrap 0.
        let c = try r.pop(descriptors: 3, counter: 3)
        r.record.prePut(entry: c.entry, usedStateAfter: 1)
        r.dev.addUsed(UsedToken(id: c.id, descriptorCount: 3), length: 0)
        r.record.postPut(entry: c.entry)
        // Cut between old_used's slot and wrap stores: slot 1 with the old
        // wrap 1, and the head still named as being completed.
        r.record.base.storeBytes(of: UInt8(1), toByteOffset: 21, as: UInt8.self)
        r.record.base.storeBytes(of: c.entry.littleEndian, toByteOffset: 22, as: UInt16.self)
        let rec = try r.record.recover(queue: try r.restarted())
        #expect(rec.chains.isEmpty)
        #expect(rec.usedState == 1)
        #expect(rec.availState == 1)
    }

    /// Completions in and out of order, entries reused, across a wrap: the
    /// record always describes exactly what is in flight.
    @Test func entriesRecycleAcrossWraps() throws {
        let r = try Ring()
        var counter: UInt64 = 1
        for _ in 0..<10 {
            let a = try r.pop(descriptors: 2, counter: counter)
            let b = try r.pop(descriptors: 3, counter: counter + 1)
            counter += 2
            for (x, n) in [(b, UInt16(3)), (a, UInt16(2))] {
                r.record.prePut(entry: x.entry, usedStateAfter: PackedQueue.position(
                    UInt16(r.dev.vringBase >> 16), advancedBy: Int(n), size: 8))
                r.dev.addUsed(UsedToken(id: x.id, descriptorCount: n), length: 0)
                r.record.postPut(entry: x.entry)
                _ = r.drv.popUsed()
            }
        }
        let c = try r.pop(descriptors: 4, counter: counter)
        let rec = try r.record.recover(queue: try r.restarted())
        #expect(rec.chains.map(\.entry) == [c.entry])
        #expect(UInt32(rec.availState) == r.dev.vringBase & 0xFFFF)
        #expect(UInt32(rec.usedState) == r.dev.vringBase >> 16)
    }

    /// The region is the front-end's memory: a record it corrupted fails the
    /// ring's start with a description, never a trap.
    @Test(arguments: ["num", "link", "loop", "total", "desc_num", "used"])
    func hostileRecordRefused(_ what: String) throws {
        let r = try Ring()
        let a = try r.pop(descriptors: 3, counter: 1)
        let b = try r.pop(descriptors: 2, counter: 2)
        let base = r.record.base
        func entry(_ e: UInt16) -> UnsafeMutableRawPointer { base + 32 + 32 * Int(e) }
        switch what {
        case "num": entry(a.entry).storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        case "link": entry(a.entry).storeBytes(of: UInt16(200), toByteOffset: 2, as: UInt16.self)
        case "loop": entry(a.entry).storeBytes(of: a.entry, toByteOffset: 2, as: UInt16.self)
        case "total": entry(b.entry).storeBytes(of: UInt16(8), toByteOffset: 6, as: UInt16.self)
        case "desc_num": base.storeBytes(of: UInt16(64), toByteOffset: 10, as: UInt16.self)
        default: base.storeBytes(of: UInt16(9), toByteOffset: 16, as: UInt16.self)
        }
        #expect(throws: InflightRecoveryError.self) { try r.record.recover(queue: try r.restarted()) }
    }
}
