import Testing
import Virtio
import VirtioDriver

@Suite struct PackedQueueTests {
    /// Many chains through a small ring (so it wraps often, also in the
    /// middle of chains), some indirect, completed out of order; data and
    /// lengths verified on both sides.
    @Test(arguments: [false, true], [UInt16(16), 7])
    func roundTrip(eventIdx: Bool, size: UInt16) throws {
        let mem = try DriverMemory(size: 4 << 20)
        let drv = PackedDriverQueue(memory: mem, size: size, eventIdx: eventIdx)
        let dev = try PackedQueue(size: size, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: eventIdx)
        let chain = Chain(queueSize: size)
        var rng = SeededRNG(seed: 7)
        let pool = mem.allocate(64 * 4096, alignment: 4096)
        var wraps = 0
        var lastWrap = drv.availWrapCounter
        for round in 0..<300 {
            var expected: [UInt16: ([UInt8], [DriverBuffer])] = [:]
            let batch = Int.random(in: 1...3, using: &rng)
            for b in 0..<batch {
                let nr = Int.random(in: 0...2, using: &rng)
                let nw = nr == 0 ? Int.random(in: 1...2, using: &rng) : Int.random(in: 0...2, using: &rng)
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
                guard let id = drv.add(readable: readable, writable: writable, indirect: round % 4 == 1) else { break }
                expected[id] = (data, writable)
            }
            if drv.availWrapCounter != lastWrap { wraps += 1; lastWrap = drv.availWrapCounter }
            drv.kick()
            var tokens: [UsedToken] = []
            while try dev.popAvail(into: chain) {
                let (data, writable) = try #require(expected[chain.head])
                #expect(readableBytes(chain) == data)
                #expect(chain.writableBytes == writable.reduce(0) { $0 + $1.length })
                for s in chain.writableSegments {
                    s.hostPointer.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: chain.head &+ 1), count: Int(s.length))
                }
                tokens.append(chain.token)
            }
            #expect(tokens.count == expected.count)
            // Complete in reverse order: packed rings allow out-of-order use.
            for t in tokens.reversed() {
                dev.pushUsed(t, length: expected[t.id]!.1.reduce(0) { $0 + $1.length })
            }
            for _ in 0..<tokens.count {
                let (id, len) = try #require(drv.popUsed())
                let (_, writable) = try #require(expected[id])
                #expect(len == writable.reduce(0) { $0 + $1.length })
                for w in writable {
                    #expect(mem.read(w.gpa, count: Int(w.length)).allSatisfy { $0 == UInt8(truncatingIfNeeded: id &+ 1) })
                }
            }
            #expect(drv.popUsed() == nil)
            #expect(drv.freeCount == Int(size))
        }
        #expect(wraps > 10)
        #expect(dev.nextAvail == drv.nextAvail && dev.availWrapCounter == drv.availWrapCounter)
        #expect(dev.nextUsed == drv.nextUsed && dev.usedWrapCounter == drv.usedWrapCounter)
        #expect(dev.counters.popped == dev.counters.completed)
    }

    @Test func resumeFromVringBase() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = PackedDriverQueue(memory: mem, size: 8, eventIdx: false)
        let dev = try PackedQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(64)
        for _ in 0..<11 {
            drv.add(readable: [DriverBuffer(gpa: buf, length: 8)], writable: [])
            #expect(try dev.popAvail(into: chain))
            dev.pushUsed(chain.token, length: 0)
            _ = drv.popUsed()
        }
        // 11 slots consumed: slot 3, wrap counter flipped to 0.
        #expect(dev.vringBase == 0x0003_0003)
        let resumed = try PackedQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false,
                                      availState: UInt16(dev.vringBase & 0xFFFF), usedState: UInt16(dev.vringBase >> 16))
        drv.add(readable: [DriverBuffer(gpa: buf, length: 8)], writable: [])
        #expect(try resumed.popAvail(into: chain))
        resumed.pushUsed(chain.token, length: 5)
        #expect(drv.popUsed()?.length == 5)
        #expect(throws: QueueSetupError.invalidSize(8)) {
            try PackedQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false, availState: 9)
        }
    }

    @Test func needEventWindow() {
        let s: UInt16 = 8, w: UInt16 = 0x8000
        // Within the first lap.
        #expect(PackedQueue.needEvent(event: w | 2, new: w | 3, old: w | 2, size: s))
        #expect(!PackedQueue.needEvent(event: w | 3, new: w | 3, old: w | 2, size: s))
        // Across the wrap: old = slot 6 lap 1, new = slot 1 lap 2 (wrap bit 0).
        #expect(PackedQueue.needEvent(event: w | 7, new: 1, old: w | 6, size: s))
        #expect(PackedQueue.needEvent(event: 0, new: 1, old: w | 6, size: s))
        #expect(!PackedQueue.needEvent(event: 1, new: 1, old: w | 6, size: s))
        #expect(!PackedQueue.needEvent(event: w | 5, new: 1, old: w | 6, size: s))
        // Same slot, other lap: not in the window.
        #expect(!PackedQueue.needEvent(event: 6, new: 1, old: w | 6, size: s))
    }

    @Test func eventSuppression() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = PackedDriverQueue(memory: mem, size: 8, eventIdx: true)
        let dev = try PackedQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true)
        let chain = Chain(queueSize: 8)
        let buf = mem.allocate(64)
        func complete(_ n: Int) throws {
            for _ in 0..<n { drv.add(readable: [DriverBuffer(gpa: buf, length: 8)], writable: []) }
            drv.kick()
            for _ in 0..<n {
                #expect(try dev.popAvail(into: chain))
                dev.pushUsed(chain.token, length: 0)
            }
        }
        // Driver disables interrupts: none.
        drv.disableInterrupts()
        try complete(1)
        #expect(!dev.needsNotification())
        // ENABLE: always.
        drv.setDriverEvent(offWrap: 0, flags: RingLayout.packedEventEnable)
        try complete(1)
        #expect(dev.needsNotification())
        while drv.popUsed() != nil {}
        // DESC: interrupt when the used descriptor at slot 5 (lap 1) is written.
        drv.setDriverEvent(offWrap: 0x8000 | 5, flags: RingLayout.packedEventDesc)
        try complete(2)   // used slots 2,3
        #expect(!dev.needsNotification())
        try complete(2)   // used slots 4,5
        #expect(dev.needsNotification())
        try complete(3)   // used slots 6,7,0(lap 2)
        #expect(!dev.needsNotification())
        while drv.popUsed() != nil {}
        // DESC across the wrap: event at slot 1 lap 2 (wrap bit 0).
        drv.setDriverEvent(offWrap: 1, flags: RingLayout.packedEventDesc)
        try complete(1)   // slot 1
        #expect(dev.needsNotification())
        #expect(!dev.needsNotification())  // nothing new
        // Device side kick suppression: DESC at the device's next avail position.
        #expect(!dev.enableKickNotifications())
        #expect(drv.deviceEvent.flags == RingLayout.packedEventDesc)
        #expect(drv.deviceEvent.offWrap == dev.nextAvail | (dev.availWrapCounter ? 0x8000 : 0))
        drv.add(readable: [DriverBuffer(gpa: buf, length: 8)], writable: [])
        #expect(drv.kick())
        dev.disableKickNotifications()
        #expect(drv.deviceEvent.flags == RingLayout.packedEventDisable)
        drv.add(readable: [DriverBuffer(gpa: buf, length: 8)], writable: [])
        #expect(!drv.kick())
        #expect(dev.enableKickNotifications())   // pending buffers noticed
    }
}

