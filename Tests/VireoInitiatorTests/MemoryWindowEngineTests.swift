import Testing
import Virtio
import VirtioDriver
import VireoWire
@testable import VireoInitiator

/// Remote access scoped to in-flight buffers (issue #12), on the remote disk's engine over
/// the fake verbs layer (which checks a window's range, life and direction as an RNIC does):
/// guest memory carries no remote access of its own; each command's segments are windows
/// bound for it; no command completes to the guest while one of them is valid.
@Suite(.serialized) struct MemoryWindowEngineTests {
    typealias Rig = RemoteQueueEngineTests.Rig

    /// The capsules the target saw (not the handshake's hello).
    static func capsules(_ rig: Rig) -> [[UInt8]] {
        rig.fabric.capsulesSeen.withLock { $0 }.filter { ($0.first ?? 0) >= 1 && ($0.first ?? 0) <= 6 }
    }

    /// A READ into two separate guest buffers (two descriptors: two segments, two windows).
    static func splitRead(_ rig: Rig, sector: UInt64) -> (data: [UInt64], status: UInt64) {
        let m = rig.memory
        let h = m.allocate(16, alignment: 16)
        m.write(VirtioBlk.RequestHeader(type: VirtioBlk.RequestType.in.rawValue, sector: sector).bytes, at: h)
        let a = m.allocate(4096, alignment: 4096), gap = m.allocate(4096, alignment: 4096), b = m.allocate(4096, alignment: 4096)
        _ = gap
        let st = m.allocate(1, alignment: 1)
        _ = rig.queues[0].add(readable: [DriverBuffer(gpa: h, length: 16)],
                              writable: [DriverBuffer(gpa: a, length: 4096), DriverBuffer(gpa: b, length: 4096),
                                         DriverBuffer(gpa: st, length: 1)])!
        return ([a, b], st)
    }

    /// Every key a capsule carried: reaches nothing once the command completed.
    static func keysAreDead(_ rig: Rig, _ capsule: [UInt8]) -> Bool {
        FakeBlockFabric.segments(capsule).allSatisfy { s in
            rig.fabric.initiatorMemory.remote(address: s.address, length: s.length, rkey: s.key, write: true) == nil
                && rig.fabric.initiatorMemory.remote(address: s.address, length: s.length, rkey: s.key, write: false) == nil
        }
    }

    @Test func theTargetReachesACommandsBuffersOnlyThroughItsWindowsWhileInFlight() throws {
        let rig = try Rig(tag: "mw", queues: 1)
        let fe = rig.frontend
        let data = RemoteQueueEngineTests.pattern(3 * 4096, seed: 9)
        let w = rig.add(0, type: .out, sector: 8, data: data)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
        #expect(rig.status(w.status) == 0 && rig.exportHolds(data, sector: 8))
        let r = rig.add(0, type: .in, sector: 8, readLength: data.count)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
        #expect(rig.memory.read(r.data, count: data.count) == data)
        let split = Self.splitRead(rig, sector: 8)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
        #expect(rig.memory.read(split.data[0], count: 4096) == Array(data[0..<4096]))
        #expect(rig.memory.read(split.data[1], count: 4096) == Array(data[4096..<8192]))
        let seen = Self.capsules(rig)
        try #require(seen.count == 3)
        #expect(FakeBlockFabric.segments(seen[2]).count == 2, "two buffers, two windows")
        for c in seen {
            #expect(CommandFlags(rawValue: c[1]).contains(.invalidate), "commands on windows ask for invalidation")
            #expect(Self.keysAreDead(rig, c), "after completion the command's keys reach nothing")
        }
        // The guest memory's own key never reached anything.
        let e = try #require(rig.device.regions.lookup(address: r.data, length: UInt64(data.count)))
        #expect(rig.fabric.initiatorMemory.remote(address: r.data, length: 512, rkey: e.rkey, write: true) == nil)
        let c = rig.device.counters
        #expect(c.windowsBound.load(ordering: .relaxed) >= 2)
        #expect(c.responsesWithoutInvalidation.load(ordering: .relaxed) == 0)
        #expect(c.payloadBytesCopied.load(ordering: .relaxed) == 0)
    }

    /// remote_access = whole-memory: no windows, the guest memory's own key (the old, insecure way).
    @Test func wholeMemoryModeUsesTheRegionsKey() throws {
        let rig = try Rig(tag: "mw-whole", queues: 1, remoteAccess: .wholeMemory)
        let fe = rig.frontend
        let r = rig.add(0, type: .in, sector: 0, readLength: 4096)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
        #expect(rig.status(r.status) == 0)
        let c = try #require(Self.capsules(rig).last)
        let e = try #require(rig.device.regions.lookup(address: r.data, length: 4096))
        #expect(!CommandFlags(rawValue: c[1]).contains(.invalidate))
        #expect(FakeBlockFabric.segments(c).map(\.key) == [e.rkey])
        #expect(rig.device.counters.windowsBound.load(ordering: .relaxed) == 0)
    }

    /// A target that invalidates nothing: the initiator invalidates every window itself before
    /// the request completes; a target that invalidates another key than the command's first
    /// window is a broken peer: its connection goes, and the request is resubmitted.
    @Test func theInitiatorInvalidatesWhatTheTargetDidNot() throws {
        let rig = try Rig(tag: "mw-strip", queues: 1)
        let fe = rig.frontend
        rig.fabric.stripInvalidation.store(true, ordering: .releasing)
        let r = rig.add(0, type: .in, sector: 0, readLength: 8192)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
        #expect(rig.status(r.status) == 0)
        let c = rig.device.counters
        #expect(c.responsesWithoutInvalidation.load(ordering: .relaxed) == 1)
        #expect(c.windowsInvalidatedLocally.load(ordering: .relaxed) == c.windowsBound.load(ordering: .relaxed))
        #expect(Self.capsules(rig).allSatisfy { Self.keysAreDead(rig, $0) })

        rig.fabric.stripInvalidation.store(false, ordering: .releasing)
        rig.fabric.invalidateLastWindow.store(true, ordering: .releasing)
        // Two buffers, two windows: the target invalidates the second instead of the first.
        let bad = Self.splitRead(rig, sector: 0)
        fe.kick(0)
        #expect(waitFor(10) { c.badResponses.load(ordering: .relaxed) >= 1 || c.connectionsLost.load(ordering: .relaxed) >= 1 })
        rig.fabric.invalidateLastWindow.store(false, ordering: .releasing)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1, "resubmitted on a new connection")
        #expect(rig.status(bad.status) == 0)
    }
}
