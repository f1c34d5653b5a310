import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

@Suite(.serialized) struct InflightTests {
    /// Requests taken but not completed when the connection dies are marked in
    /// the inflight buffer; after a reconnect with SET_INFLIGHT_FD they are
    /// resubmitted in fetch order and complete.
    @Test func resubmitAfterReconnect() throws {
        let rig = try BlockRig(tag: "inflight", queues: 1)
        var fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        #expect(fe.protocolFeatures.contains(.inflightSHMFD))
        try fe.setMemTable(rig.memory)
        let inflight = try fe.inflightBuffer(numQueues: 1, queueSize: 32)
        #expect(inflight.descriptor.mmapSize == UInt64(InflightRegion.queueRegionSize(queueSize: 32, packed: false)))
        let q = SplitDriverQueue(memory: rig.memory, size: 32, eventIdx: true)
        try fe.setUpRing(0, driver: q)

        // One request completes normally, then three are held "on the wire".
        let first = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q.add(first, write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)
        rig.device.holdCompletions(true)
        var reqs: [(BlockRequest, UInt16, [UInt8])] = []
        for i in 0..<3 {
            let data = pattern(4096, seed: UInt8(i + 1))
            let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: UInt64(i * 8), dataLength: 4096)
            rig.memory.write(data, at: r.data)
            reqs.append((r, q.add(r, write: true), data))
        }
        fe.kick(0)
        #expect(waitUntil { rig.device.heldCount == 3 })
        // Inflight buffer: three heads marked, in fetch order.
        let view = try MemoryMapping(fd: inflight.fd, offset: 0, count: Int(inflight.descriptor.mmapSize))
        func inflightFlag(_ head: UInt16) -> UInt8 { view.baseAddress.load(fromByteOffset: 16 + 16 * Int(head), as: UInt8.self) }
        #expect(reqs.allSatisfy { inflightFlag($0.1) == 1 })
        #expect(inflightFlag(UInt16(0)) == 0 || reqs.contains { $0.1 == 0 })

        // The VMM "crashes": connection gone, nothing completed.
        rig.device.holdCompletions(false)
        try rig.reconnect()
        #expect(rig.device.heldCount == 0)
        fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        try fe.setInflightBuffer(inflight.descriptor, fd: inflight.fd)
        // QEMU restarts the ring at the used index when GET_VRING_BASE was impossible.
        try fe.setUpRing(0, driver: q, base: q.lastUsedIdx)
        let used = fe.waitForUsed(0, count: 3)
        #expect(used.map(\.id) == reqs.map { UInt32($0.1) })
        for (r, _, _) in reqs {
            #expect(rig.memory.read(r.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
        }
        for (i, (_, _, data)) in reqs.enumerated() {
            #expect(Array(rig.device.contents[(i * 4096)..<((i + 1) * 4096)]) == data)
        }
        #expect(reqs.allSatisfy { inflightFlag($0.1) == 0 })
        // And the ring carries on with new requests after the resubmitted ones.
        let next = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q.add(next, write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)
        #expect(try fe.vringBase(0) == 5)
    }

    @Test func recoveryRepairsInterruptedCompletion() throws {
        let region = try InflightRegion(numQueues: 1, queueSize: 8, packed: false)
        let q = try #require(region.splitQueue(0))
        q.markPopped(head: 3, counter: 1)
        q.markPopped(head: 5, counter: 2)
        q.markPopped(head: 1, counter: 3)
        // Completion of head 5 published used.idx = 1 but died before clearing the flag.
        q.prePut(head: 5)
        let (heads, next) = q.recover(ringUsedIndex: 1)
        #expect(heads == [3, 1])
        #expect(next == 4)
        #expect(q.usedIndex == 1)
    }
}
