import Testing
import Virtio
import VirtioDriver

/// Deterministic PRNG (SplitMix64) so failures reproduce.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bytes of all readable segments, concatenated.
func readableBytes(_ chain: Chain) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Int(chain.readableBytes))
    _ = out.withUnsafeMutableBytes { chain.copyReadable(from: 0, into: $0) }
    return out
}

@Suite struct SplitQueueTests {
    /// Driver adds chains of random buffers (some indirect); the device reads
    /// the readable bytes, writes a pattern into the writable ones and
    /// completes; the driver checks lengths and data.
    @Test(arguments: [UInt16(0), 65530], [false, true])
    func roundTrip(startIndex: UInt16, eventIdx: Bool) throws {
        let mem = try DriverMemory(size: 4 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: eventIdx, startIndex: startIndex)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: mem.guestMemory,
                                 eventIdx: eventIdx, lastAvailIdx: startIndex)
        let chain = Chain(queueSize: 16)
        var rng = SeededRNG(seed: 42)
        let pool = mem.allocate(64 * 4096, alignment: 4096)
        for round in 0..<200 {
            let batch = Int.random(in: 1...4, using: &rng)
            var expected: [UInt16: ([UInt8], [DriverBuffer])] = [:]
            for b in 0..<batch {
                let nr = Int.random(in: 0...3, using: &rng)
                let nw = nr == 0 ? Int.random(in: 1...3, using: &rng) : Int.random(in: 0...3, using: &rng)
                var readable: [DriverBuffer] = [], writable: [DriverBuffer] = [], data: [UInt8] = []
                for i in 0..<(nr + nw) {
                    let gpa = pool + UInt64(((b * 8 + i) % 64) * 4096)
                    let len = UInt32.random(in: 1...4096, using: &rng)
                    if i < nr {
                        let bytes = (0..<Int(len)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                        mem.write(bytes, at: gpa)
                        data += bytes
                        readable.append(DriverBuffer(gpa: gpa, length: len))
                    } else {
                        writable.append(DriverBuffer(gpa: gpa, length: len))
                    }
                }
                let head = try #require(drv.add(readable: readable, writable: writable, indirect: round % 3 == 0))
                expected[head] = (data, writable)
            }
            drv.publish()
            var got = 0
            while try dev.popAvail(into: chain) {
                let (data, writable) = try #require(expected[chain.head])
                #expect(readableBytes(chain) == data)
                #expect(chain.writableBytes == writable.reduce(0) { $0 + $1.length })
                for s in chain.writableSegments { s.hostPointer.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: chain.head), count: Int(s.length)) }
                dev.pushUsed(chain.token, length: chain.writableBytes)
                got += 1
            }
            #expect(got == batch)
            for _ in 0..<batch {
                let (id, len) = try #require(drv.popUsed())
                let (_, writable) = try #require(expected[UInt16(id)])
                #expect(len == writable.reduce(0) { $0 + $1.length })
                for w in writable { #expect(mem.read(w.gpa, count: Int(w.length)).allSatisfy { $0 == UInt8(truncatingIfNeeded: id) }) }
            }
            #expect(drv.popUsed() == nil)
        }
        #expect(dev.counters.popped == dev.counters.completed)
        #expect(dev.lastAvailIdx == drv.availIdx)
        #expect(drv.freeCount == 16)
    }

    @Test func bufferCrossingAdjacentRegionsIsSplit() throws {
        let mem = try DriverMemory(regions: [(0x10_0000, 1 << 20), (0x20_0000, 1 << 20)])
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: false)
        let dev = try SplitQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
        let chain = Chain(queueSize: 8)
        let gpa: UInt64 = 0x20_0000 - 100
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        mem.write(bytes, at: gpa)
        drv.add(readable: [DriverBuffer(gpa: gpa, length: 300)], writable: [])
        drv.publish()
        #expect(try dev.popAvail(into: chain))
        #expect(chain.count == 2)
        #expect(chain[0].length == 100 && chain[0].guestAddr == gpa)
        #expect(chain[1].length == 200 && chain[1].guestAddr == 0x20_0000)
        #expect(chain[0].region == 0 && chain[1].region == 1, "each piece names the region it was found in")
        #expect(readableBytes(chain) == bytes)
    }

    @Test func frontendVirtualRingAddresses() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: false)
        let dev = try SplitQueue(size: 8, addresses: drv.frontendAddresses, memory: mem.guestMemory, eventIdx: false)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(64)
        drv.add(readable: [], writable: [DriverBuffer(gpa: buf, length: 64)])
        drv.publish()
        #expect(try dev.popAvail(into: chain))
        #expect(chain.writableBytes == 64 && chain.readableBytes == 0)
    }

    @Test func setupRejectsBadRings() throws {
        let mem = try DriverMemory(size: 1 << 20, gpa: 0x10_0000)
        let ok = RingAddresses(descriptors: 0x10_0000, driverArea: 0x10_1000, deviceArea: 0x10_2000, space: .guestPhysical)
        #expect(throws: QueueSetupError.invalidSize(12)) {
            try SplitQueue(size: 12, addresses: ok, memory: mem.guestMemory, eventIdx: false)
        }
        #expect(throws: QueueSetupError.invalidSize(0)) {
            try SplitQueue(size: 0, addresses: ok, memory: mem.guestMemory, eventIdx: false)
        }
        var a = ok; a.descriptors += 8
        #expect(throws: QueueSetupError.misaligned(.descriptors)) { try SplitQueue(size: 8, addresses: a, memory: mem.guestMemory, eventIdx: false) }
        a = ok; a.deviceArea += 2
        #expect(throws: QueueSetupError.misaligned(.device)) { try SplitQueue(size: 8, addresses: a, memory: mem.guestMemory, eventIdx: false) }
        a = ok; a.driverArea = 0x10_0000 + (1 << 20) - 8   // runs off the end
        #expect(throws: QueueSetupError.ringUnmapped(.driver)) { try SplitQueue(size: 8, addresses: a, memory: mem.guestMemory, eventIdx: false) }
        a = ok; a.space = .frontendVirtual
        #expect(throws: QueueSetupError.ringUnmapped(.descriptors)) { try SplitQueue(size: 8, addresses: a, memory: mem.guestMemory, eventIdx: false) }
    }

    /// VIRTIO_F_EVENT_IDX: the device notifies only when used_event lies in
    /// the window of entries published since the last decision.
    @Test(arguments: [UInt16(0), 65533])
    func eventIdxNotifications(start: UInt16) throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: true, startIndex: start)
        let dev = try SplitQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true, lastAvailIdx: start)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(16)
        func complete(_ n: Int) throws {
            for _ in 0..<n { drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: []) }
            drv.publish()
            for _ in 0..<n {
                #expect(try dev.popAvail(into: chain))
                dev.pushUsed(chain.token, length: 0)
            }
        }
        // The first decision always notifies (no previous notification to compare with).
        drv.setUsedEvent(start)
        try complete(1)
        #expect(dev.needsNotification())
        while drv.popUsed() != nil {}
        // Driver wants an interrupt only after 3 more completions: used_event = start + 3.
        drv.setUsedEvent(start &+ 3)
        try complete(2)   // used idx start+3: window [start+1, start+3) excludes start+3
        #expect(!dev.needsNotification())
        try complete(1)   // window [start+3, start+4) includes start+3
        #expect(dev.needsNotification())
        try complete(1)   // window [start+4, start+5): used_event behind, no notification
        #expect(!dev.needsNotification())
        while drv.popUsed() != nil {}
        // Nothing new published: never notify.
        #expect(!dev.needsNotification())
        // The device writes avail_event as it consumes (driver kick decisions).
        #expect(drv.availEvent == dev.lastAvailIdx)
        #expect(dev.counters.notificationsSent == 2)
        #expect(dev.counters.notificationsSuppressed == 3)
    }

    @Test func needEventFormula() {
        // vring_need_event(event, new, old): event in [old, new) mod 2^16.
        #expect(SplitQueue.needEvent(event: 5, new: 6, old: 5))
        #expect(!SplitQueue.needEvent(event: 6, new: 6, old: 5))
        #expect(!SplitQueue.needEvent(event: 4, new: 6, old: 5))
        #expect(SplitQueue.needEvent(event: 65535, new: 2, old: 65534))
        #expect(SplitQueue.needEvent(event: 0, new: 2, old: 65534))
        #expect(!SplitQueue.needEvent(event: 2, new: 2, old: 65534))
        #expect(!SplitQueue.needEvent(event: 3, new: 3, old: 3))
    }

    @Test func noInterruptFlagWithoutEventIdx() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: false)
        let dev = try SplitQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(16)
        drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: [])
        #expect(drv.publish())               // device did not suppress kicks
        #expect(try dev.popAvail(into: chain))
        dev.pushUsed(chain.token, length: 0)
        #expect(dev.needsNotification())
        drv.disableInterrupts()
        drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: [])
        drv.publish()
        #expect(try dev.popAvail(into: chain))
        dev.pushUsed(chain.token, length: 0)
        #expect(!dev.needsNotification())
        // Kick suppression from the device side.
        dev.disableKickNotifications()
        #expect(drv.usedFlags == RingLayout.usedFlagNoNotify)
        drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: [])
        #expect(!drv.publish())
        // Re-enabling reports the buffer that arrived while kicks were off.
        #expect(dev.enableKickNotifications())
        #expect(drv.usedFlags == 0)
    }

    @Test func kickSuppressionWithEventIdx() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: true)
        let dev = try SplitQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(16)
        #expect(!dev.enableKickNotifications())  // nothing pending; avail_event = 0
        drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: [])
        #expect(drv.publish())                   // crosses avail_event 0
        dev.disableKickNotifications()
        #expect(try dev.popAvail(into: chain))   // polling: avail_event stays at 0
        drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: [])
        #expect(!drv.publish())                  // no kick while the device polls
        #expect(dev.enableKickNotifications())   // and the device notices it itself
    }

    @Test func replaceMemoryTable() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: false)
        let dev = try SplitQueue(size: 8, addresses: drv.frontendAddresses, memory: mem.guestMemory, eventIdx: false)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(16)
        // Same bytes under a new table object: the queue keeps working.
        let same = try GuestMemory(regions: mem.guestMemory.regions)
        try dev.replaceMemory(same)
        drv.add(readable: [DriverBuffer(gpa: buf, length: 16)], writable: [])
        drv.publish()
        #expect(try dev.popAvail(into: chain))
        #expect(dev.memory === same)
        // A table without the rings: the queue is broken, not crashed.
        #expect(throws: QueueSetupError.ringUnmapped(.descriptors)) { try dev.replaceMemory(.empty) }
        #expect(dev.isBroken && dev.brokenReason == .ringUnmapped)
        #expect(throws: VirtqueueError.queueBroken(.ringUnmapped)) { try dev.popAvail(into: chain) }
    }
}
