import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

extension PackedDriverQueue {
    /// Adds `r` as OUT (data readable) or IN (data writable) and returns the buffer ID.
    @discardableResult
    func add(_ r: BlockRequest, write: Bool) -> UInt16 {
        let b = r.buffers(write: write)
        return add(readable: b.readable, writable: b.writable)!
    }
}

@Suite(.serialized) struct PackedRingTests {
    /// virtio-blk over a packed ring through the vhost-user front-end: I/O
    /// across several wraps of the ring, GET_VRING_BASE in the packed
    /// encoding, and a restart from that base.
    @Test func blockIOOverPackedRing() throws {
        let rig = try BlockRig(tag: "packed", queues: 1)
        let fe = rig.frontend
        #expect(rig.device.features & VirtioFeatures.ringPacked != 0)
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        #expect(fe.features & VirtioFeatures.ringPacked != 0)
        try fe.setMemTable(rig.memory)
        let q = PackedDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpPackedRing(0, driver: q)
        // 5 rounds of 6 requests on a 16-entry ring: both wrap counters flip.
        for round in 0..<5 {
            var writes: [(BlockRequest, [UInt8])] = []
            for i in 0..<3 {
                let data = pattern(1024, seed: UInt8(round * 8 + i))
                let w = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: UInt64(i * 2), dataLength: 1024)
                rig.memory.write(data, at: w.data)
                q.add(w, write: true)
                writes.append((w, data))
            }
            fe.kickPacked(0)
            #expect(fe.waitForPackedUsed(0, count: 3).count == 3)
            var reads: [BlockRequest] = []
            for i in 0..<3 {
                let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: UInt64(i * 2), dataLength: 1024)
                q.add(r, write: false)
                reads.append(r)
            }
            fe.kickPacked(0)
            let used = fe.waitForPackedUsed(0, count: 3)
            #expect(used.count == 3 && used.allSatisfy { $0.length == 1025 })
            for (i, r) in reads.enumerated() {
                #expect(rig.memory.read(r.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
                #expect(rig.memory.read(r.data, count: 1024) == writes[i].1)
            }
            #expect(writes.allSatisfy { rig.memory.read($0.0.status, count: 1) == [VirtioBlk.Status.ok.rawValue] })
        }
        // 30 chains of 2-3 descriptors have gone round the 16-slot ring:
        // GET_VRING_BASE reports the packed state.
        let expected = VhostUserFrontend.packedBase(availSlot: q.nextAvail, availWrap: q.availWrapCounter,
                                                    usedSlot: q.nextUsed, usedWrap: q.usedWrapCounter)
        #expect(expected & 0x8000_8000 != 0x8000_8000)       // at least one wrap counter flipped
        #expect(try fe.vringBase(0) == expected)
        // Restart from that base (SET_VRING_BASE packed encoding) and carry on.
        try fe.setUpPackedRing(0, driver: q, base: expected)
        let f = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q.add(f, write: true)
        fe.kickPacked(0)
        #expect(fe.waitForPackedUsed(0, count: 1).count == 1)
        #expect(rig.memory.read(f.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
    }

    /// A packed base whose slot is outside the ring is refused at kick time.
    @Test func packedRefusals() throws {
        let rig = try BlockRig(tag: "packed-bad", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        try fe.setMemTable(rig.memory)
        let q = PackedDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        #expect(throws: (any Error).self) { try fe.setUpPackedRing(0, driver: q, base: 0x8000_8000 | 16) }
    }

    /// virtio-net echo over packed TX/RX rings.
    @Test func netEchoOverPackedRings() throws {
        let path = socketPath("packed-net")
        let device = LoopbackNetDevice(queuePairs: 1, ctrlQueue: false)
        let server = try VhostUserServer(path: path, device: device)
        try server.start()
        defer { server.stop() }
        let memory = try DriverMemory(size: 4 << 20)
        let fe = try VhostUserFrontend(path: path)
        try fe.negotiate(wanted: VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.ringPacked
            | VirtioNet.Feature.mac | VirtioNet.Feature.mergeableRxBuffers)
        #expect(fe.features & VirtioFeatures.ringPacked != 0)
        try fe.setMemTable(memory)
        let rx = PackedDriverQueue(memory: memory, size: 32, eventIdx: true)
        let tx = PackedDriverQueue(memory: memory, size: 32, eventIdx: true)
        try fe.setUpPackedRing(0, driver: rx)
        try fe.setUpPackedRing(1, driver: tx)
        let buf = memory.allocate(2048)
        rx.add(readable: [], writable: [DriverBuffer(gpa: buf, length: 2048)])
        fe.kickPacked(0)
        let frame = pattern(60, seed: 9)
        let hdr = memory.allocate(12)
        memory.fill(hdr, count: 12, byte: 0)
        let body = memory.allocate(60)
        memory.write(frame, at: body)
        tx.add(readable: [DriverBuffer(gpa: hdr, length: 12), DriverBuffer(gpa: body, length: 60)], writable: [])
        fe.kickPacked(1)
        #expect(fe.waitForPackedUsed(1, count: 1).first?.length == 0)
        #expect(fe.waitForPackedUsed(0, count: 1).first?.length == 72)
        #expect(memory.read(buf + 12, count: 60) == frame)
    }
}
