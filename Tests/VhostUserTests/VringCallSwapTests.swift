import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

@Suite(.serialized) struct VringCallSwapTests {
    /// A stream of SET_VRING_CALL (QEMU's interrupt masking) while I/O runs on
    /// two queues served by two workers: every request completes, the old fd
    /// is never signalled once the swap returned, and calls land on the new fd.
    @Test func callSwapsDuringIO() throws {
        let rig = try BlockRig(tag: "callswap", queues: 2)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let queues = [0, 1].map { _ in SplitDriverQueue(memory: rig.memory, size: 64, eventIdx: true) }
        for (i, q) in queues.enumerated() { try fe.setUpRing(i, driver: q) }
        let data = pattern(4096, seed: 7)
        var expected = [0, 0]
        var completed = [0, 0]
        var statuses: [UInt64] = []
        var retired: [SharedEventFD] = []
        func collect(_ i: Int) {
            while let _ = queues[i].popUsed() { completed[i] += 1 }
        }
        for round in 0..<150 {
            for (i, q) in queues.enumerated() {
                for k in 0..<8 {
                    let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue,
                                                    sector: UInt64((round % 16) * 8 + k % 8), dataLength: 512)
                    rig.memory.write(Array(data[0..<512]), at: r.data)
                    q.add(r, write: true)
                    statuses.append(r.status)
                    expected[i] += 1
                }
                fe.kick(i)
            }
            // Swap while the workers are completing that batch.
            for i in 0..<2 {
                let old = try #require(try fe.replaceCall(i))
                old.drain()            // whatever arrived before the swap returned
                retired.append(old)
            }
            // One more request per queue after the swap (and after the batch,
            // so EVENT_IDX asks for exactly its call): it must reach the new fd.
            for (i, q) in queues.enumerated() {
                #expect(waitUntil { collect(i); return completed[i] == expected[i] })
                _ = q.enableInterrupts()
                let f = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
                q.add(f, write: true)
                statuses.append(f.status)
                expected[i] += 1
                fe.kick(i)
            }
            for i in 0..<2 {
                let call = try #require(fe.rings[i]?.call)
                let p = Poller(capacity: 1)
                p.add(call.rawValue)
                var signalled = false
                let deadline = monotonicNanoseconds() + 2_000_000_000
                while !signalled && monotonicNanoseconds() < deadline {
                    _ = try? p.wait(timeoutMilliseconds: 100)
                    signalled = call.drain() > 0
                }
                #expect(signalled, "round \(round) queue \(i): no call on the new fd")
                #expect(waitUntil { collect(i); return completed[i] == expected[i] })
            }
            // Nothing reached the fds retired this round after their swap returned.
            for old in retired.suffix(2) { #expect(old.drain() == 0, "round \(round): call on a retired fd") }
            if retired.count > 8 { retired.removeFirst(retired.count - 8) }
        }
        #expect(completed == expected)
        #expect(statuses.allSatisfy { rig.memory.read($0, count: 1) == [VirtioBlk.Status.ok.rawValue] })
        #expect(Array(rig.device.contents[0..<512]) == Array(data[0..<512]))
    }

    /// SET_VRING_CALL does not quiesce: it returns while the device holds a
    /// request (a quiesce would wait for the drain, up to its 5 s timeout).
    @Test func callSwapDoesNotWaitForOutstandingRequests() throws {
        let rig = try BlockRig(tag: "callswap-held", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: false)
        try fe.setUpRing(0, driver: q)
        rig.device.holdCompletions(true)
        q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe.kick(0)
        #expect(waitUntil { rig.device.heldCount == 1 })
        let t0 = monotonicNanoseconds()
        for _ in 0..<20 { try fe.replaceCall(0) }
        #expect(monotonicNanoseconds() - t0 < 1_000_000_000)
        #expect(rig.device.heldCount == 1)
        #expect(try #require(rig.server.session).vrings[0].call.replacements == 21)
    }
}
