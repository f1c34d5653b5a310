import Glibc
import Testing
import Virtio
import VireoSys
@testable import VhostUser

/// The stepping seam (`VhostUserSession.stepping`) that the vhost-user-session
/// fuzz harness drives: requests applied on the caller's thread, queue work
/// run by `stepQueues`, the same teardown as `run()`.
@Suite struct SteppingSessionTests {
    static let uva: UInt64 = 0x7f00_0000_0000

    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        var o: [UInt8] = []
        o.appendLE(v)
        return o
    }

    func frame(_ r: VhostUserRequest, _ payload: [UInt8] = [], flags: UInt32 = VhostUserHeader.version) -> [UInt8] {
        var out: [UInt8] = []
        VhostUserHeader(request: r.rawValue, flags: flags, size: UInt32(payload.count)).encode(into: &out)
        return out + payload
    }

    func step(_ s: VhostUserSession, _ f: [UInt8], fds: [Int32] = []) -> VhostUserSession.End? {
        let received = ReceivedFileDescriptors()
        for fd in fds { received.append(fcntl(fd, F_DUPFD_CLOEXEC, 0)) }
        return f.withUnsafeBytes { s.step(frame: $0, fds: received) }
    }

    /// Negotiates (VERSION_1 and vhost-user's protocol features), maps `guest` as the memory
    /// table and sets up ring 0 (`size` entries; table at 0, avail at 0x1000, used at 0x2000) with
    /// its call and kick, short of enabling it.
    func setUpRing0(_ s: VhostUserSession, table: [UInt8], guest: borrowing FileDescriptor, size: UInt32,
                    call: borrowing EventFD, kick: borrowing EventFD) {
        #expect(step(s, frame(.getFeatures)) == nil)
        #expect(step(s, frame(.setProtocolFeatures, le(UInt64(0x3)))) == nil)
        #expect(step(s, frame(.setFeatures, le(VirtioFeatures.version1 | 1 << 30))) == nil)
        #expect(step(s, frame(.setMemTable, table), fds: [guest.rawValue]) == nil)
        #expect(step(s, frame(.setVringNum, le(UInt32(0)) + le(size))) == nil)
        var addr: [UInt8] = []
        VhostUserVringAddress(index: 0, flags: 0, descriptorTable: Self.uva, usedRing: Self.uva + 0x2000,
                              availableRing: Self.uva + 0x1000, logGuestAddress: 0).encode(into: &addr)
        #expect(step(s, frame(.setVringAddr, addr)) == nil)
        #expect(step(s, frame(.setVringCall, le(UInt64(0))), fds: [call.rawValue]) == nil)
        #expect(step(s, frame(.setVringKick, le(UInt64(0))), fds: [kick.rawValue]) == nil)
    }

    @Test func aReadIsServedOnTheCallingThreadAndTeardownReleasesEverything() throws {
        var pair = try UnixSocket.pair()
        let frontend = pair.first.take()!
        let device = MemoryBlockDevice(capacityBytes: 64 << 10, numQueues: 2, maxQueueSize: 64)
        let s = VhostUserSession.stepping(socket: pair.second.take()!, device: device)
        let guest = try FileDescriptor.memfd(name: "stepping-guest", size: 64 << 10)
        let kick = try EventFD(), call = try EventFD()

        var table = le(UInt32(1)) + le(UInt32(0))
        VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0, size: 64 << 10, frontendVirtualAddress: Self.uva)
            .encode(into: &table)
        // One READ of 512 bytes on queue 0 (8 descriptors): table at 0, avail at 0x1000, used at 0x2000.
        var desc: [UInt8] = []
        desc += le(UInt64(0x3000)) + le(UInt32(16)) + le(UInt16(1)) + le(UInt16(1))
        desc += le(UInt64(0x4000)) + le(UInt32(512)) + le(UInt16(3)) + le(UInt16(2))
        desc += le(UInt64(0x5000)) + le(UInt32(1)) + le(UInt16(2)) + le(UInt16(0))
        _ = desc.withUnsafeBytes { pwrite(guest.rawValue, $0.baseAddress, $0.count, 0) }
        let avail = le(UInt16(0)) + le(UInt16(1)) + le(UInt16(0))
        _ = avail.withUnsafeBytes { pwrite(guest.rawValue, $0.baseAddress, $0.count, 0x1000) }
        let header = le(UInt32(0)) + le(UInt32(0)) + le(UInt64(2))
        _ = header.withUnsafeBytes { pwrite(guest.rawValue, $0.baseAddress, $0.count, 0x3000) }

        setUpRing0(s, table: table, guest: guest, size: 8, call: call, kick: kick)
        #expect(s.stepQueues() == 0, "ring not enabled yet")
        #expect(call.drain() == 1, "a ring start signals once (RingStartCallTests)")
        #expect(step(s, frame(.setVringEnable, le(UInt32(0)) + le(UInt32(1)))) == nil)
        #expect(s.stepQueues() > 0)
        #expect(device.requestsHandled.load(ordering: .relaxed) == 1)
        var usedIdx: UInt16 = 0
        _ = pread(guest.rawValue, &usedIdx, 2, 0x2002)
        #expect(usedIdx == 1)
        #expect(call.drain() == 1)
        #expect(!s.holdsNothing)

        // The GET_FEATURES reply went to the socket, as from `run()`.
        var reply = [UInt8](repeating: 0, count: VhostUserHeader.size + 8)
        let got = try reply.withUnsafeMutableBytes { try frontend.receive(into: $0, maxFDs: 0, appendingTo: ReceivedFileDescriptors()) }
        #expect(got == reply.count)

        // A truncated frame ends the connection with a protocol error, as at end of stream.
        let short = Array(frame(.setVringNum, le(UInt32(0)) + le(UInt32(8))).dropLast(2))
        guard case .protocolError = step(s, short) else { Issue.record("a truncated frame was accepted"); return }
        s.finishStepping()
        #expect(s.holdsNothing)
    }

    /// A service round that completes several requests of one ring calls the driver once
    /// (#13: one call per batch), not once per request; every used entry is still published.
    @Test func aRoundCompletingFourRequestsCallsOnce() throws {
        var pair = try UnixSocket.pair()
        let frontend = pair.first.take()!   // kept open: the session answers GET_FEATURES on it
        let device = MemoryBlockDevice(capacityBytes: 64 << 10, numQueues: 1, maxQueueSize: 64)
        let s = VhostUserSession.stepping(socket: pair.second.take()!, device: device)
        let guest = try FileDescriptor.memfd(name: "stepping-batch", size: 64 << 10)
        let kick = try EventFD(), call = try EventFD()
        var table = le(UInt32(1)) + le(UInt32(0))
        VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0, size: 64 << 10, frontendVirtualAddress: Self.uva)
            .encode(into: &table)
        // Four READs of 512 bytes (3 descriptors each), all available before the round.
        var desc: [UInt8] = []
        for k in 0..<4 {
            let d = UInt16(3 * k)
            desc += le(UInt64(0x3000 + 16 * k)) + le(UInt32(16)) + le(UInt16(1)) + le(d + 1)
            desc += le(UInt64(0x4000 + 512 * k)) + le(UInt32(512)) + le(UInt16(3)) + le(d + 2)
            desc += le(UInt64(0x5000 + k)) + le(UInt32(1)) + le(UInt16(2)) + le(UInt16(0))
            let header = le(UInt32(0)) + le(UInt32(0)) + le(UInt64(2 * k))
            _ = header.withUnsafeBytes { pwrite(guest.rawValue, $0.baseAddress, $0.count, off_t(0x3000 + 16 * k)) }
        }
        _ = desc.withUnsafeBytes { pwrite(guest.rawValue, $0.baseAddress, $0.count, 0) }
        let avail = le(UInt16(0)) + le(UInt16(4)) + le(UInt16(0)) + le(UInt16(3)) + le(UInt16(6)) + le(UInt16(9))
        _ = avail.withUnsafeBytes { pwrite(guest.rawValue, $0.baseAddress, $0.count, 0x1000) }

        setUpRing0(s, table: table, guest: guest, size: 16, call: call, kick: kick)
        #expect(step(s, frame(.setVringEnable, le(UInt32(0)) + le(UInt32(1)))) == nil)
        #expect(s.stepQueues() > 0)
        #expect(device.requestsHandled.load(ordering: .relaxed) == 4)
        var usedIdx: UInt16 = 0
        _ = pread(guest.rawValue, &usedIdx, 2, 0x2002)
        #expect(usedIdx == 4, "every completion is published")
        #expect(call.drain() == 1, "one call for the round's four completions")
        s.finishStepping()
        #expect(s.holdsNothing)
        withExtendedLifetime(frontend) {}
    }
}
