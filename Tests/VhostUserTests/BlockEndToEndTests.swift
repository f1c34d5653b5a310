import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

@Suite(.serialized) struct BlockEndToEndTests {
    @Test func writePatternAndReadBackOnTwoQueues() throws {
        let rig = try BlockRig(tag: "e2e")
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        #expect(fe.features & VirtioFeatures.version1 != 0)
        #expect(fe.protocolFeatures.contains(.replyAck))
        #expect(!fe.protocolFeatures.contains(.rarp)) // a block device does not offer RARP
        #expect(try fe.u64Reply(.getQueueNum) == 2)
        try fe.setMemTable(rig.memory)
        let q0 = SplitDriverQueue(memory: rig.memory, size: 64, eventIdx: true)
        let q1 = SplitDriverQueue(memory: rig.memory, size: 64, eventIdx: true)
        try fe.setUpRing(0, driver: q0)
        try fe.setUpRing(1, driver: q1)

        // Config space: capacity in sectors, blk_size, num_queues.
        let cfg = try fe.config(size: 60)
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == UInt64(1 << 20) / 512)
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 20, as: UInt32.self) } == 512)
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 34, as: UInt16.self) } == 2)
        // A larger window than the device's struct reads zeros beyond it.
        #expect(try fe.config(size: 80).suffix(20).allSatisfy { $0 == 0 })

        // Write 8 KiB at sector 8 on queue 0.
        let data = pattern(8192, seed: 7)
        let w = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: 8, dataLength: 8192)
        rig.memory.write(data, at: w.data)
        let wh = q0.add(w, write: true)
        fe.kick(0)
        let wu = fe.waitForUsed(0, count: 1)
        #expect(wu.count == 1 && wu.first?.id == UInt32(wh) && wu.first?.length == 1)
        #expect(rig.memory.read(w.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
        #expect(Array(rig.device.contents[4096..<(4096 + 8192)]) == data)

        // Read it back on queue 1.
        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 8, dataLength: 8192)
        let rh = q1.add(r, write: false)
        fe.kick(1)
        let ru = fe.waitForUsed(1, count: 1)
        #expect(ru.first?.id == UInt32(rh) && ru.first?.length == 8193)
        #expect(rig.memory.read(r.data, count: 8192) == data)

        // FLUSH, GET_ID, out of range (IOERR), unknown type (UNSUPP), bad request (no status byte).
        let f = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q0.add(f, write: true)
        let id = rig.memory.blockRequest(type: VirtioBlk.RequestType.getID.rawValue, sector: 0, dataLength: 20)
        q0.add(id, write: false)
        let oob = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: UInt64(1 << 20) / 512 - 1, dataLength: 1024)
        q0.add(oob, write: false)
        let huge = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: UInt64.max / 256, dataLength: 512)
        q0.add(huge, write: false)
        let unk = rig.memory.blockRequest(type: 77, sector: 0, dataLength: 0)
        q0.add(unk, write: true)
        let noStatus = rig.memory.allocate(16)
        q0.add(readable: [DriverBuffer(gpa: noStatus, length: 16)], writable: [])
        fe.kick(0)
        let more = fe.waitForUsed(0, count: 6)
        // A failed IN reports its whole writable stream (data + status), as QEMU does: the
        // status byte is the last of it, and the length is what a migration's dirty log covers.
        #expect(more.map(\.length) == [1, 21, 1025, 513, 1, 0])
        #expect(rig.memory.read(f.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
        #expect(rig.memory.read(id.data, count: 12) == Array("vireo-memblk".utf8))
        #expect(rig.memory.read(oob.status, count: 1) == [VirtioBlk.Status.ioError.rawValue])
        #expect(rig.memory.read(huge.status, count: 1) == [VirtioBlk.Status.ioError.rawValue])
        #expect(rig.memory.read(unk.status, count: 1) == [VirtioBlk.Status.unsupported.rawValue])

        // WRITE_ZEROES over the pattern's first sector.
        let wz = rig.memory.blockRequest(type: VirtioBlk.RequestType.writeZeroes.rawValue, sector: 0, dataLength: 16)
        var seg: [UInt8] = []
        seg.appendLE(UInt64(8)); seg.appendLE(UInt32(1)); seg.appendLE(UInt32(0))
        rig.memory.write(seg, at: wz.data)
        q1.add(wz, write: true)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1).first?.length == 1)
        #expect(rig.device.contents[4096..<4608].allSatisfy { $0 == 0 })
        #expect(rig.device.contents[4608] == data[512])

        // GET_VRING_BASE stops ring 0 and reports the 7 requests taken.
        #expect(try fe.vringBase(0) == 7)
        let late = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q0.add(late, write: true)
        fe.rings[0]!.kick.signal()
        _ = q0.publish()
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 200).isEmpty)
        // Ring 1 still runs.
        let r2 = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q1.add(r2, write: true)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1).count == 1)
        // Restarting ring 0 from base 7 serves the late request.
        try fe.setUpRing(0, driver: q0, base: 7)
        #expect(fe.waitForUsed(0, count: 1).count == 1)
    }

    @Test func configChangeNotificationOnResize() throws {
        let rig = try BlockRig(tag: "cfg", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        let backend = try fe.openBackendChannel()
        // REPLY_ACK round-trip so the back-end has processed SET_BACKEND_REQ_FD.
        try fe.setMemTable(rig.memory)
        rig.device.resize(sectors: 100)
        #expect(try rig.server.notifyConfigChange())
        let frame = try backend.readFrame()
        #expect(frame?.0.request == VhostUserBackendRequest.configChangeMsg.rawValue)
        let cfg = try fe.config(size: 8)
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == 100)
    }
}
