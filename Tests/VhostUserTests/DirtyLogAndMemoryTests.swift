import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

@Suite(.serialized) struct DirtyLogAndMemoryTests {
    /// With LOG_ALL on, data the device writes into guest memory and the
    /// used ring are marked dirty; pages it did not write are not.
    @Test func dirtyLogMarksWrittenPagesAndUsedRing() throws {
        let rig = try BlockRig(tag: "log", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        #expect(fe.protocolFeatures.contains(.logSHMFD))
        try fe.setMemTable(rig.memory)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        // Put something on the disk to read back.
        let w = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: 0, dataLength: 8192)
        rig.memory.write(pattern(8192, seed: 3), at: w.data)
        q.add(w, write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)

        // Migration starts: log base, LOG_ALL, ring address with the LOG flag.
        let top = rig.memory.layout.map { $0.guestPhysAddr + UInt64($0.size) }.max()!
        let logSize = Int((top / 4096 + 7) / 8)
        let logFD = try FileDescriptor.memfd(name: "log", size: logSize)
        try fe.setLogBase(fd: logFD, size: UInt64(logSize))
        try fe.setFeatures(fe.features | VhostFeature.logAll)
        try fe.setRingAddress(0, driver: q, log: true)
        let log = try MemoryMapping(fd: logFD, offset: 0, count: logSize)
        func dirty(_ gpa: UInt64) -> Bool {
            let page = gpa / 4096
            return log.baseAddress.load(fromByteOffset: Int(page / 8), as: UInt8.self) & (1 << UInt8(page % 8)) != 0
        }
        #expect(!dirty(w.data)) // the OUT request wrote nothing into guest memory

        // An IN request writes 8 KiB of data and the status byte.
        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 8192)
        let untouched = rig.memory.allocate(4096 * 3, alignment: 4096) + 4096
        q.add(r, write: false)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).first?.length == 8193)
        #expect(rig.memory.read(r.data, count: 8192) == pattern(8192, seed: 3))
        #expect(dirty(r.data) && dirty(r.data + 4096) && dirty(r.data + 8191))
        #expect(dirty(r.status))
        #expect(dirty(q.usedGPA + 2))
        #expect(!dirty(untouched))
        #expect(!dirty(w.data) || w.data / 4096 == r.status / 4096 || w.data / 4096 == q.usedGPA / 4096)
    }

    /// The front-end's side of a migration's dirty log: SET_LOG_BASE over a
    /// memfd covering `memory`, then LOG_ALL. Returns the bit reader.
    private func startLogging(_ fe: VhostUserFrontend, memory: DriverMemory) throws -> (UInt64) -> Bool {
        let top = memory.layout.map { $0.guestPhysAddr + UInt64($0.size) }.max()!
        let logSize = Int((top / 4096 + 7) / 8)
        let logFD = try FileDescriptor.memfd(name: "log", size: logSize)
        try fe.setLogBase(fd: logFD, size: UInt64(logSize))
        try fe.setFeatures(fe.features | VhostFeature.logAll)
        let log = try MemoryMapping(fd: logFD, offset: 0, count: logSize)
        return { gpa in
            let page = gpa / 4096
            return log.baseAddress.load(fromByteOffset: Int(page / 8), as: UInt8.self) & (1 << UInt8(page % 8)) != 0
        }
    }

    /// A split ring 0 on `rig` with the migration log on (SET_VRING_ADDR with
    /// the LOG flag): the driver queue and the bit reader.
    private func loggingSplitRing(_ rig: BlockRig) throws -> (SplitDriverQueue, (UInt64) -> Bool) {
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        let dirty = try startLogging(fe, memory: rig.memory)
        try fe.setRingAddress(0, driver: q, log: true)
        return (q, dirty)
    }

    /// A failed IN still logs its status byte, which follows the data (here
    /// on another page): the destination of a migration must see IOERR, not
    /// the stale byte. (Completing with used length 1 logged the first data
    /// byte instead.) Both failure paths: a request refused at parse (past
    /// the end of the disk) and one failed after parse (a quiesce's abort).
    @Test func failedReadLogsItsStatusByte() throws {
        let rig = try BlockRig(tag: "log-fail", queues: 1, capacity: 1 << 20, drainTimeoutNanoseconds: 200_000_000)
        let fe = rig.frontend
        let (q, dirty) = try loggingSplitRing(rig)
        // Sector 2048 is the end of a 1 MiB disk: refused at parse.
        let data = rig.memory.allocate(8192, alignment: 4096)
        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 2048, dataLength: 8192, dataGPA: data)
        #expect(r.status / 4096 != r.data / 4096)
        q.add(r, write: false)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).first?.length == 8193)
        #expect(rig.memory.read(r.status, count: 1) == [VirtioBlk.Status.ioError.rawValue])
        #expect(dirty(r.status))
        #expect(dirty(r.data) && dirty(r.data + 4096))

        // Held by the device, then failed by the quiesce of GET_VRING_BASE.
        rig.device.holdCompletions(true)
        let data2 = rig.memory.allocate(8192, alignment: 4096)
        let r2 = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 8192, dataGPA: data2)
        #expect(r2.status / 4096 != r2.data / 4096)
        q.add(r2, write: false)
        fe.kick(0)
        #expect(waitUntil { rig.device.heldCount == 1 })
        _ = try fe.vringBase(0)
        #expect(rig.memory.read(r2.status, count: 1) == [VirtioBlk.Status.ioError.rawValue])
        #expect(dirty(r2.status))
    }

    /// Packed rings under LOG_ALL: the used descriptor the device writes and
    /// the device event suppression structure are logged with the data and
    /// status; GET_VRING_BASE and a restart from it carry on.
    @Test func packedRingWritesAreLogged() throws {
        let rig = try BlockRig(tag: "log-packed", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        try fe.setMemTable(rig.memory)
        let q = PackedDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpPackedRing(0, driver: q)
        let w = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: 0, dataLength: 8192)
        rig.memory.write(pattern(8192, seed: 5), at: w.data)
        q.add(w, write: true)
        fe.kickPacked(0)
        #expect(fe.waitForPackedUsed(0, count: 1).count == 1)
        let dirty = try startLogging(fe, memory: rig.memory)
        #expect(!dirty(q.ringGPA) && !dirty(q.deviceEventGPA))

        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 8192)
        q.add(r, write: false)
        fe.kickPacked(0)
        #expect(fe.waitForPackedUsed(0, count: 1).first?.length == 8193)
        #expect(rig.memory.read(r.data, count: 8192) == pattern(8192, seed: 5))
        #expect(dirty(r.data) && dirty(r.data + 8191) && dirty(r.status))
        #expect(dirty(q.ringGPA))          // the used descriptor (slot 2: the OUT took 0-2, the IN 3-5)
        #expect(dirty(q.deviceEventGPA))   // DESC mode: rewritten on each pop
        #expect(!dirty(w.data) || w.data / 4096 == q.ringGPA / 4096 || w.data / 4096 == q.deviceEventGPA / 4096)
    }

    /// The test switch (`logsDeviceWrites` false) leaves what completions write
    /// into guest buffers unlogged and still logs the ring: what the migration
    /// test's negative control relies on.
    @Test func testSwitchLeavesDeviceWritesUnlogged() throws {
        let rig = try BlockRig(tag: "log-off", queues: 1, logsDeviceWrites: false)
        let fe = rig.frontend
        let (q, dirty) = try loggingSplitRing(rig)
        let data = rig.memory.allocate(8192, alignment: 4096)
        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 8192, dataGPA: data)
        q.add(r, write: false)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)
        #expect(!dirty(r.data) && !dirty(r.data + 4096))
        #expect(dirty(q.usedGPA + 2))
    }

    /// ADD_MEM_REG / REM_MEM_REG: callbacks see each region, buffers in an
    /// added region work, and once removed they are rejected while the ring
    /// (in another region) keeps working.
    @Test func addAndRemoveMemoryRegions() throws {
        let memory = try DriverMemory(regions: [(0x10000, 4 << 20), (0x1000_0000, 1 << 20)])
        let rig = try BlockRig(tag: "memreg", queues: 1, memory: memory)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        #expect(fe.protocolFeatures.contains(.configureMemSlots))
        #expect(try fe.maxMemorySlots() >= 32)
        let descriptors = VhostUserFrontend.regionDescriptors(memory)
        try fe.setMemTable([descriptors[0]], fd: memory.fd)
        #expect(rig.device.knownRegions.map(\.guestPhysAddr) == [0x10000])
        let q = SplitDriverQueue(memory: memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        // Put data on the disk.
        let w = memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: 0, dataLength: 4096)
        memory.write(pattern(4096, seed: 9), at: w.data)
        q.add(w, write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)

        // Before ADD_MEM_REG, a buffer in region 1 is a bad request.
        let far: UInt64 = 0x1000_0000 + 8192
        let r0 = memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 4096, dataGPA: far)
        q.add(r0, write: false)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).first?.length == 0)

        try fe.addMemoryRegion(descriptors[1], fd: memory.fd)
        #expect(Set(rig.device.knownRegions.map(\.guestPhysAddr)) == [0x10000, 0x1000_0000])
        let added = rig.device.knownRegions.first { $0.guestPhysAddr == 0x1000_0000 }
        #expect(added?.size == 1 << 20)
        memory.fill(far, count: 4096, byte: 0)
        let r1 = memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 4096, dataGPA: far)
        q.add(r1, write: false)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).first?.length == 4097)
        #expect(memory.read(far, count: 4096) == pattern(4096, seed: 9))
        // The host pointer the device was given aliases the same guest bytes.
        #expect(added.map { $0.hostAddress.advanced(by: 8192).load(as: UInt8.self) } == pattern(1, seed: 9).first)

        try fe.removeMemoryRegion(descriptors[1])
        #expect(rig.device.knownRegions.map(\.guestPhysAddr) == [0x10000])
        let events = rig.device.regionEventLog
        #expect(events.map(\.added) == [true, true, false])
        #expect(events.map(\.gpa) == [0x10000, 0x1000_0000, 0x1000_0000])
        let r2 = memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 4096, dataGPA: far)
        q.add(r2, write: false)
        let r3 = memory.blockRequest(type: VirtioBlk.RequestType.in.rawValue, sector: 0, dataLength: 4096)
        q.add(r3, write: false)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 2).map(\.length) == [0, 4097])

        // Removing a region that is not there closes the connection.
        #expect(throws: VhostUserFrontendError.nack(.remMemReg)) { try fe.removeMemoryRegion(descriptors[1]) }
    }

    /// Every region the device heard about is removed again on disconnect.
    @Test func disconnectRemovesRegions() throws {
        let rig = try BlockRig(tag: "memdisc", queues: 1)
        try rig.frontend.negotiate(wanted: blockFeatures)
        try rig.frontend.setMemTable(rig.memory)
        #expect(rig.device.knownRegions.count == 1)
        try rig.reconnect()
        #expect(waitUntil { rig.device.knownRegions.isEmpty })
    }

    @Test func dirtyLogUnit() throws {
        let fd = try FileDescriptor.memfd(name: "l", size: 16)
        let log = try DirtyLog(fd: fd, offset: 0, size: 16)
        log.logWrite(gpa: 4095, length: 2)          // pages 0 and 1
        log.logWrite(gpa: 10 * 4096, length: 1)     // page 10
        log.logWrite(gpa: UInt64.max - 10, length: 100) // overflow: counted, not logged
        log.logWrite(gpa: 1 << 40, length: 1)        // past the log
        #expect(log.isDirty(gpa: 0) && log.isDirty(gpa: 4096) && log.isDirty(gpa: 10 * 4096))
        #expect(!log.isDirty(gpa: 2 * 4096) && !log.isDirty(gpa: 9 * 4096))
        #expect(log.outOfRange.load(ordering: .relaxed) == 2)
    }
}
