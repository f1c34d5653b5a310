import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend
#if canImport(Glibc)
import Glibc
#endif

/// A VMM that hands over files it can shrink: each case costs that
/// connection alone (a protocol error), never the process or device B.
@Suite(.serialized) struct HostileFrontendTests {
    /// Device B, up and serving a ring, to check it through A's misbehaviour.
    struct Bystander {
        let rig: BlockRig
        let queue: SplitDriverQueue
        init() throws {
            rig = try BlockRig(tag: "bystander", queues: 1)
            try rig.frontend.negotiate(wanted: blockFeatures)
            try rig.frontend.setMemTable(rig.memory)
            queue = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
            try rig.frontend.setUpRing(0, driver: queue)
        }
        func expectServes() {
            let f = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
            queue.add(f, write: true)
            rig.frontend.kick(0)
            #expect(rig.frontend.waitForUsed(0, count: 1).count == 1, "device B stopped serving")
        }
    }

    private func expectProtocolError(_ rig: BlockRig, containing fragment: String) {
        expectProtocolError(server: rig.server, fe: rig.frontend, containing: fragment)
    }

    /// A memfd never truncated (0 bytes) cannot back a region: mapping it
    /// would SIGBUS on the first access. Before: `fileSize == 0` was accepted.
    @Test func untruncatedMemfdIsRefused() throws {
        let b = try Bystander()
        let a = try BlockRig(tag: "memfd0", queues: 1)
        try a.frontend.negotiate(wanted: blockFeatures)
        let empty = try FileDescriptor.memfd(name: "never-sized", size: 0)
        let d = VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0x10000, size: 1 << 20,
                                                frontendVirtualAddress: 0x7f00_0000_0000, mmapOffset: 0)
        _ = try? a.frontend.setMemTable([d], fd: empty)
        expectProtocolError(a, containing: "file is 0 bytes")
        b.expectServes()
    }

    /// A log fd smaller than SET_LOG_BASE's size is refused (the first logged
    /// write past its end would SIGBUS).
    @Test func tooSmallLogFDIsRefused() throws {
        let b = try Bystander()
        let a = try BlockRig(tag: "logsmall", queues: 1)
        try a.frontend.negotiate(wanted: blockFeatures)
        try a.frontend.setMemTable(a.memory)
        let small = try FileDescriptor.memfd(name: "log", size: 16)
        #expect(throws: VhostUserFrontendError.self) { try a.frontend.setLogBase(fd: small, size: 1 << 20) }
        expectProtocolError(a, containing: "log fd is 16 bytes")
        b.expectServes()
    }

    /// The inflight buffer the back-end creates and hands to the front-end
    /// is sealed: the front-end cannot shrink it under the back-end's mapping.
    @Test func inflightMemfdIsSealed() throws {
        let a = try BlockRig(tag: "inflseal", queues: 1)
        try a.frontend.negotiate(wanted: blockFeatures)
        let buf = try a.frontend.inflightBuffer(numQueues: 1, queueSize: 16)
        #expect(throws: SystemError.self) { try buf.fd.truncate(to: 0) }
        #expect(throws: SystemError.self) { try buf.fd.truncate(to: 1 << 30) }
        #expect(try buf.fd.size() >= Int(buf.descriptor.mmapSize))
    }

    /// The VMM shrinks its guest memory file after the back-end mapped it:
    /// the worker's next ring access faults. The fault is contained (zero
    /// page), that connection alone fails with a clear error, device B keeps
    /// serving, and A serves again after a reconnect with good memory.
    /// Before: SIGBUS killed the process, every VM's devices with it.
    @Test func guestMemoryShrunkUnderMappingFailsThatDeviceOnly() throws {
        let b = try Bystander()
        let a = try BlockRig(tag: "shrink", queues: 1)
        try a.frontend.negotiate(wanted: blockFeatures)
        try a.frontend.setMemTable(a.memory)
        let q = SplitDriverQueue(memory: a.memory, size: 16, eventIdx: false)
        let ring = try a.frontend.setUpRing(0, driver: q)
        let f = a.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q.add(f, write: true)
        a.frontend.kick(0)
        #expect(a.frontend.waitForUsed(0, count: 1).count == 1)

        // From here on this test must not touch a.memory: its pages are gone.
        // (Only the kick eventfd is signalled: publishing would write the ring.)
        try a.memory.fd.truncate(to: 0)
        ring.kick.signal()
        expectProtocolError(a, containing: "SIGBUS contained")
        b.expectServes()

        let fresh = try DriverMemory(size: 4 << 20)
        a.frontend = try VhostUserFrontend(path: a.path)
        try a.frontend.negotiate(wanted: blockFeatures)
        try a.frontend.setMemTable(fresh)
        let q2 = SplitDriverQueue(memory: fresh, size: 16, eventIdx: false)
        try a.frontend.setUpRing(0, driver: q2)
        let g = fresh.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q2.add(g, write: true)
        a.frontend.kick(0)
        #expect(a.frontend.waitForUsed(0, count: 1).count == 1)
    }

    /// A local client that sends half a header and then nothing cannot hold
    /// the socket: after the partial-message timeout its connection is
    /// closed and the real VMM connects and is served. Before: the server
    /// read the rest of the header with no deadline, one front-end at a time.
    @Test func halfAHeaderCannotLockTheVMMOut() throws {
        let path = socketPath("half")
        let device = MemoryBlockDevice(capacityBytes: 1 << 20)
        var options = VhostUserOptions()
        options.partialMessageTimeoutMilliseconds = 300
        let server = try VhostUserServer(path: path, device: device, options: options)
        try server.start()
        defer { server.stop() }
        let squatter = try VhostUserFrontend(path: path)
        try squatter.sendRaw([1, 0, 0, 0, 1])
        #expect(squatter.waitForClose(timeoutMilliseconds: 5000), "a half message held the connection")
        guard case .socketError(let e)? = server.lastEnd else {
            Issue.record("ended with \(String(describing: server.lastEnd))")
            return
        }
        #expect(e.errno == ETIMEDOUT && e.call.contains("incomplete"), "\(e)")

        let vmm = try VhostUserFrontend(path: path)
        try vmm.negotiate(wanted: blockFeatures)
        let memory = try DriverMemory(size: 1 << 20)
        try vmm.setMemTable(memory)
        let q = SplitDriverQueue(memory: memory, size: 16, eventIdx: false)
        try vmm.setUpRing(0, driver: q)
        q.add(memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        vmm.kick(0)
        #expect(vmm.waitForUsed(0, count: 1).count == 1)
    }

    /// A VMM that makes its call eventfd blocking and fills its counter
    /// wedges the queue worker in the write that signals a completion. The
    /// next quiesce does not hang: after the park timeout the connection
    /// fails with a clear error, device B keeps serving, and once the VMM
    /// reads its eventfd (the worker unblocks and returns) the device serves
    /// a new front-end. Before: `waitForAck` had no deadline and the control
    /// thread hung.
    @Test func blockingSaturatedCallFDCannotHangTheControlThread() throws {
        let b = try Bystander()
        let path = socketPath("wedge")
        let device = MemoryBlockDevice(capacityBytes: 1 << 20)
        var options = VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 200), drainTimeoutNanoseconds: 100_000_000)
        options.parkTimeoutNanoseconds = 500_000_000
        let server = try VhostUserServer(path: path, device: device, options: options)
        try server.start()
        defer { server.stop() }
        let memory = try DriverMemory(size: 1 << 20)
        let fe = try VhostUserFrontend(path: path)
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(memory)
        let q = SplitDriverQueue(memory: memory, size: 16, eventIdx: false)
        let ring = try fe.setUpRing(0, driver: q)
        // The ring start's one call (RingStartCallTests) first: the counter is 0 below.
        let started = Poller(capacity: 1)
        _ = started.add(ring.call.rawValue)
        #expect((try? started.wait(timeoutMilliseconds: 2000)) == 1)
        _ = ring.call.drain()
        // The VMM's trick: blocking mode on the shared open file, counter one below its maximum.
        try ring.call.event.fd.setNonBlocking(false)
        var full: UInt64 = 0xffff_ffff_ffff_fffe
        _ = withUnsafeBytes(of: &full) { write(ring.call.rawValue, $0.baseAddress, 8) }
        q.add(memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe.kick(0)
        #expect(waitUntil { device.requestsHandled.load(ordering: .relaxed) == 1 })

        // A quiesce: answered with a closed connection, not a hang.
        _ = try? fe.setMemTable(memory)
        expectProtocolError(server: server, fe: fe, containing: "did not park")
        #expect(server.wedgedSessions.load(ordering: .relaxed) == 1)
        b.expectServes()

        // The VMM reads its eventfd: the worker's write completes, it returns, the device serves again.
        try ring.call.event.fd.setNonBlocking(true)
        _ = ring.call.drain()
        let fe2 = try VhostUserFrontend(path: path)
        try fe2.negotiate(wanted: blockFeatures)
        try fe2.setMemTable(memory)
        let q2 = SplitDriverQueue(memory: memory, size: 16, eventIdx: false)
        try fe2.setUpRing(0, driver: q2)
        q2.add(memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe2.kick(0)
        #expect(fe2.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
    }

    private func expectProtocolError(server: VhostUserServer, fe: VhostUserFrontend, containing fragment: String) {
        #expect(fe.waitForClose(timeoutMilliseconds: 10_000), "connection not closed")
        #expect(waitUntil(10) { server.lastEnd != nil })
        guard case .protocolError(let e)? = server.lastEnd else {
            Issue.record("ended with \(String(describing: server.lastEnd))")
            return
        }
        #expect(e.description.contains(fragment), "\(e)")
    }

    /// An inflight region sent while a ring runs would unmap the record the
    /// ring's worker writes to: refused, the connection closed, and the
    /// server (every other connection) unharmed.
    @Test func inflightRegionWhileRingRuns() throws {
        let rig = try BlockRig(tag: "inflight-running", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        _ = try fe.inflightBuffer(numQueues: 1, queueSize: 16)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        #expect(throws: (any Error).self) { _ = try fe.inflightBuffer(numQueues: 1, queueSize: 16) }
        #expect(fe.waitForClose())
        // The server still serves: a new connection does I/O.
        try rig.reconnect()
        let fe2 = rig.frontend
        try fe2.negotiate(wanted: blockFeatures)
        try fe2.setMemTable(rig.memory)
        let q2 = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe2.setUpRing(0, driver: q2)
        q2.add(rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe2.kick(0)
        #expect(fe2.waitForUsed(0, count: 1).count == 1)
    }
}
