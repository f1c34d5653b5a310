import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// The back-end's own inflight record (`RestartRecord`) for front-ends that
/// send no INFLIGHT_SHMFD region (QEMU's vhost-user-net). Each test uses a
/// `MemoryBlockDevice` that holds writes while flushes complete: completions
/// out of the order the chains were taken, as a NIC's receive buffers go.
/// "The back-end dies" is the connection ending with requests still out; the
/// front-end then restarts the ring the way QEMU does when it could not ask
/// the dead back-end (GET_VRING_BASE): at the used index (split), or at a
/// stale position (packed).
@Suite(.serialized) struct RestartRecordTests {
    /// A rig whose device keeps its record at `<socket>.inflight` (removed first).
    private func rig(_ tag: String, drainTimeoutNanoseconds: UInt64 = 5_000_000_000) throws -> (BlockRig, String) {
        let rig = try BlockRig(tag: tag, queues: 1, drainTimeoutNanoseconds: drainTimeoutNanoseconds)
        let path = rig.path + ".inflight"
        unlink(path)
        rig.device.restartRecordPath = path
        return (rig, path)
    }

    /// Negotiates, sends the memory table and sets up ring 0: a new split
    /// ring of 32, or `driver` restarted at `base` (the front-end's view after
    /// a back-end death).
    @discardableResult
    private func startRing(_ rig: BlockRig, _ fe: VhostUserFrontend, driver: SplitDriverQueue? = nil,
                           base: UInt16? = nil) throws -> SplitDriverQueue {
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let q = driver ?? SplitDriverQueue(memory: rig.memory, size: 32, eventIdx: true)
        try fe.setUpRing(0, driver: q, base: base)
        return q
    }

    private func write(_ rig: BlockRig, _ q: SplitDriverQueue, sector: UInt64, seed: UInt8) -> (UInt16, [UInt8]) {
        let data = pattern(4096, seed: seed)
        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: sector, dataLength: 4096)
        rig.memory.write(data, at: r.data)
        return (q.add(r, write: true), data)
    }

    private func flush(_ rig: BlockRig, _ q: SplitDriverQueue) -> UInt16 {
        q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
    }

    /// Write A (held), flush F (completes), write C (held); the back-end dies.
    /// Restarted at used.idx = 1, a back-end without the record takes F again
    /// (completing it twice) and never sees A; with it, A and C are
    /// resubmitted, the ring resumes after C, and nothing is taken twice.
    @Test func splitRingResumesAfterOutOfOrderCompletions() throws {
        let (rig, path) = try rig("restart-split")
        defer { unlink(path) }
        var fe = rig.frontend
        let q = try startRing(rig, fe)
        rig.device.holdCompletions(true, exceptFlushes: true)
        let a = write(rig, q, sector: 0, seed: 1)
        let f = flush(rig, q)
        let c = write(rig, q, sector: 8, seed: 2)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).map(\.id) == [UInt32(f)])
        #expect(waitUntil { rig.device.heldCount == 2 })

        rig.device.holdCompletions(false)
        try rig.reconnect()
        fe = rig.frontend
        #expect(q.lastUsedIdx == 1)
        try startRing(rig, fe, driver: q, base: q.lastUsedIdx)
        let used = fe.waitForUsed(0, count: 2)
        #expect(used.map(\.id) == [UInt32(a.0), UInt32(c.0)])
        let aLanded = Array(rig.device.contents[0..<4096]) == a.1
        let cLanded = Array(rig.device.contents[(8 * 512)..<(8 * 512 + 4096)]) == c.1
        #expect(aLanded && cLanded)
        // The ring carries on after C; nothing more came back.
        let g = flush(rig, q)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).map(\.id) == [UInt32(g)])
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 200).isEmpty)
        #expect(try fe.vringBase(0) == 4)
    }

    /// The same death, but the ring restarts with a used index in guest
    /// memory that the record does not know (as after a guest reset while no
    /// back-end ran): the record is cleared and the ring starts where the
    /// front-end says, resubmitting nothing.
    @Test func recordNotMatchingTheRingIsCleared() throws {
        let (rig, path) = try rig("restart-mismatch")
        defer { unlink(path) }
        var fe = rig.frontend
        let q = try startRing(rig, fe)
        rig.device.holdCompletions(true, exceptFlushes: true)
        _ = write(rig, q, sector: 0, seed: 1)
        let f = flush(rig, q)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).map(\.id) == [UInt32(f)])
        #expect(waitUntil { rig.device.heldCount == 1 })
        rig.device.holdCompletions(false)
        try rig.reconnect()
        let handled = rig.device.requestsHandled.load(ordering: .relaxed)

        // used.idx 0 in guest memory; the record says 1 (the other checks
        // pass: one chain in flight of two available, the first one offered).
        rig.memory.write([0, 0], at: q.usedGPA + 2)
        fe = rig.frontend
        try startRing(rig, fe, driver: q, base: 2)
        usleep(200_000)
        #expect(rig.device.requestsHandled.load(ordering: .relaxed) == handled)
        #expect(try fe.vringBase(0) == 2)
    }

    /// A record left for one front-end process means nothing to another (a
    /// new QEMU has new guest memory): nothing is resubmitted into it.
    @Test func recordOfAnotherFrontendIsCleared() throws {
        let (rig, path) = try rig("restart-other")
        defer { unlink(path) }
        var fe = rig.frontend
        let q = try startRing(rig, fe)
        rig.device.holdCompletions(true)
        _ = write(rig, q, sector: 0, seed: 1)
        fe.kick(0)
        #expect(waitUntil { rig.device.heldCount == 1 })
        rig.device.holdCompletions(false)
        try rig.reconnect()
        let handled = rig.device.requestsHandled.load(ordering: .relaxed)

        let other = try DriverMemory(size: 8 << 20)
        fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(other)
        let q2 = SplitDriverQueue(memory: other, size: 32, eventIdx: true)
        try fe.setUpRing(0, driver: q2)
        #expect(rig.device.requestsHandled.load(ordering: .relaxed) == handled)
        let h = q2.add(other.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).map(\.id) == [UInt32(h)])
        #expect(rig.device.requestsHandled.load(ordering: .relaxed) == handled + 1)
    }

    /// GET_VRING_BASE answered (a clean stop): the front-end knows the
    /// position, so the ring's record is cleared (version 0, nothing marked).
    @Test func cleanStopClearsTheRing() throws {
        let (rig, path) = try rig("restart-clean")
        defer { unlink(path) }
        let fe = rig.frontend
        let q = try startRing(rig, fe)
        _ = flush(rig, q)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)
        let regionStart = RestartRecord.headerBytes(numQueues: 1)
        func version() throws -> UInt16 {
            let bytes = try #require(FileManager.default.contents(atPath: path))
            return UInt16(bytes[regionStart + 8]) | UInt16(bytes[regionStart + 9]) << 8
        }
        #expect(try version() == InflightRegion.version)
        #expect(try fe.vringBase(0) == 1)
        #expect(try version() == 0)
    }

    /// Packed: two writes held while flushes behind them complete, then the
    /// back-end dies and the front-end restarts the ring at a stale position.
    /// The record's positions and descriptor copies win: the writes are
    /// resubmitted and the ring goes on where the driver is.
    @Test func packedRingResumesFromTheRecord() throws {
        let (rig, path) = try rig("restart-packed")
        defer { unlink(path) }
        var fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        try fe.setMemTable(rig.memory)
        let q = PackedDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpPackedRing(0, driver: q)
        for _ in 0..<3 {
            q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
            fe.kickPacked(0)
            #expect(fe.waitForPackedUsed(0, count: 1).count == 1)
        }
        rig.device.holdCompletions(true, exceptFlushes: true)
        var writes: [(BlockRequest, UInt16, [UInt8])] = []
        for i in 0..<2 {
            let data = pattern(2048, seed: UInt8(60 + i))
            let w = rig.memory.blockRequest(type: VirtioBlk.RequestType.out.rawValue, sector: UInt64(i * 4), dataLength: 2048)
            rig.memory.write(data, at: w.data)
            writes.append((w, q.add(w, write: true), data))
            q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        }
        fe.kickPacked(0)
        #expect(fe.waitForPackedUsed(0, count: 2).count == 2)
        #expect(waitUntil { rig.device.heldCount == 2 })

        rig.device.holdCompletions(false)
        try rig.reconnect()
        fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures | VirtioFeatures.ringPacked)
        try fe.setMemTable(rig.memory)
        try fe.setUpPackedRing(0, driver: q, base: 0x8000_8000)
        let used = fe.waitForPackedUsed(0, count: 2)
        #expect(used.map(\.id) == writes.map(\.1))
        for (i, (w, _, data)) in writes.enumerated() {
            #expect(rig.memory.read(w.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
            let landed = Array(rig.device.contents[(i * 2048)..<((i + 1) * 2048)]) == data
            #expect(landed)
        }
        q.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe.kickPacked(0)
        #expect(fe.waitForPackedUsed(0, count: 1).count == 1)
        #expect(try fe.vringBase(0) == VhostUserFrontend.packedBase(availSlot: q.nextAvail, availWrap: q.availWrapCounter,
                                                                     usedSlot: q.nextUsed, usedWrap: q.usedWrapCounter))
    }

    /// The split checks on their own: a record one used entry behind the
    /// ring fits whichever store of `postPut` was the last (mark cleared or
    /// not); two behind, or more chains in flight than the driver made
    /// available, or (nothing ever used) heads other than the first ones the
    /// driver offered, do not.
    @Test func splitRecordChecks() throws {
        let mem = try DriverMemory(size: 1 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 8, eventIdx: false)
        let offered = (0..<3).map { _ in drv.add(readable: [], writable: [DriverBuffer(gpa: mem.allocate(64), length: 64)])! }
        _ = drv.publish()
        let region = try InflightRegion(numQueues: 1, queueSize: 8, packed: false)
        let rec = try #require(region.splitQueue(0))
        func queue(used: UInt16) throws -> SplitQueue {
            mem.write([UInt8(used & 0xff), UInt8(used >> 8)], at: drv.usedGPA + 2)
            return try SplitQueue(size: 8, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: false)
        }
        _ = rec.recover(ringUsedIndex: 0)           // version 1, used index 0
        #expect(VhostUserVring.ownRecordMismatch(rec, queue: try queue(used: 0)) == nil)
        #expect(VhostUserVring.ownRecordMismatch(rec, queue: try queue(used: 1)) == nil)
        #expect(VhostUserVring.ownRecordMismatch(rec, queue: try queue(used: 2)) != nil)
        // Avail idx 3: three heads offered.
        let q0 = try queue(used: 0)
        #expect(VhostUserVring.ownRecordMismatch(heads: [offered[1], offered[0]], queue: q0) == nil)
        #expect(VhostUserVring.ownRecordMismatch(heads: [offered[2], offered[0]], queue: q0) != nil)
        #expect(VhostUserVring.ownRecordMismatch(heads: [offered[0], offered[1], offered[2], 7], queue: q0) != nil)
        let q2 = try queue(used: 2)
        #expect(VhostUserVring.ownRecordMismatch(heads: [offered[0]], queue: q2) == nil)
        #expect(VhostUserVring.ownRecordMismatch(heads: [offered[0], offered[1]], queue: q2) != nil)
    }

    /// Nothing in flight, but the back-end published used entries after the
    /// front-end read used.idx (a closing connection gives buffers back):
    /// the record's position (= used.idx in guest memory) wins over a stale
    /// SET_VRING_BASE, so nothing already used is taken again.
    @Test func recordPositionWinsWithNothingInFlight() throws {
        let (rig, path) = try rig("restart-idle")
        defer { unlink(path) }
        var fe = rig.frontend
        let q = try startRing(rig, fe)
        _ = flush(rig, q)
        _ = flush(rig, q)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 2).count == 2)
        try rig.reconnect()
        let handled = rig.device.requestsHandled.load(ordering: .relaxed)
        fe = rig.frontend
        try startRing(rig, fe, driver: q, base: 1)
        #expect(try fe.vringBase(0) == 2)
        #expect(rig.device.requestsHandled.load(ordering: .relaxed) == handled)
    }

    /// The file is not trusted: one of the wrong size or with a foreign
    /// header is cleared before use, and one others may write is refused
    /// (the ring still starts, without a record).
    @Test func untrustedFilesAreNotUsed() throws {
        for (garbage, mode) in [(true, mode_t(0o600)), (false, mode_t(0o666))] {
            let (rig, path) = try rig(garbage ? "restart-garbage" : "restart-mode")
            defer { unlink(path) }
            let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode)
            #expect(fd >= 0)
            fchmod(fd, mode)
            let junk = [UInt8](repeating: 0xA5, count: 8192)
            _ = junk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            let fe = rig.frontend
            let q = try startRing(rig, fe)
            #expect(rig.device.requestsHandled.load(ordering: .relaxed) == 0)
            let h = flush(rig, q)
            fe.kick(0)
            #expect(fe.waitForUsed(0, count: 1).map(\.id) == [UInt32(h)])
            let bytes = try #require(FileManager.default.contents(atPath: path))
            if garbage {
                #expect(bytes.count != 8192 && bytes.prefix(8) != Data(junk.prefix(8)))   // re-laid out
            } else {
                #expect(bytes == Data(junk))                                              // left alone
            }
        }
    }
}
