import Foundation
import Synchronization
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// A block device that completes asynchronously (from `poll`, a few
/// milliseconds later, like an RDMA completion) and records how many
/// requests were out when its memory callbacks ran.
final class AsyncProbeDevice: VhostUserDevice, @unchecked Sendable {
    let inner = MemoryBlockDevice(capacityBytes: 1 << 20)
    var deviceType: VirtioDeviceType { inner.deviceType }
    var features: UInt64 { inner.features }
    var protocolFeatures: VhostUserProtocolFeatures { inner.protocolFeatures }
    var queueCount: Int { 1 }
    var maxQueueSize: UInt16 { 256 }
    func configSpace() -> [UInt8] { inner.configSpace() }
    /// Worker-thread only.
    private var pending: [(VhostUserQueueRequest, UInt64)] = []
    let outstanding = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let outstandingAtCallbacks = Locked<[Int]>([])

    func handle(_ request: VhostUserQueueRequest) {
        outstanding.add(1, ordering: .relaxed)
        pending.append((request, monotonicNanoseconds() + 20_000_000))
    }

    func poll(worker: Int) -> Int {
        guard let first = pending.first, monotonicNanoseconds() >= first.1 else { return 0 }
        pending.removeFirst()
        let len = inner.serve(first.0.chain)
        outstanding.add(-1, ordering: .relaxed)
        completed.add(1, ordering: .relaxed)
        first.0.complete(writtenLength: len)
        return 1
    }

    func memoryRegionsAdded(_ regions: [GuestMemory.Region]) {
        outstandingAtCallbacks.withLock { $0.append(outstanding.load(ordering: .relaxed)) }
    }

    func memoryRegionsRemoved(_ regions: [GuestMemory.Region]) {
        outstandingAtCallbacks.withLock { $0.append(outstanding.load(ordering: .relaxed)) }
    }

    func connectionClosed() { pending.removeAll() }
}

@Suite(.serialized) struct QuiesceTests {
    /// Memory changes wait for requests the device still holds: the callbacks
    /// run with nothing outstanding, and every request completes.
    @Test func memoryChangesDrainAsyncRequests() throws {
        let path = socketPath("quiesce")
        let device = AsyncProbeDevice()
        let server = try VhostUserServer(path: path, device: device)
        try server.start()
        defer { server.stop() }
        let memory = try DriverMemory(regions: [(0x10000, 4 << 20), (0x1000_0000, 1 << 20)])
        let fe = try VhostUserFrontend(path: path)
        try fe.negotiate(wanted: blockFeatures)
        let descriptors = VhostUserFrontend.regionDescriptors(memory)
        try fe.setMemTable([descriptors[0]], fd: memory.fd)
        let q = SplitDriverQueue(memory: memory, size: 32, eventIdx: false)
        try fe.setUpRing(0, driver: q)
        for round in 0..<3 {
            for _ in 0..<8 {
                q.add(memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
            }
            fe.kick(0)
            #expect(waitUntil { device.outstanding.load(ordering: .relaxed) > 0 })
            if round % 2 == 0 {
                try fe.addMemoryRegion(descriptors[1], fd: memory.fd)
            } else {
                try fe.removeMemoryRegion(descriptors[1])
            }
            // The change returned only after the drain: all 8 done.
            #expect(device.completed.load(ordering: .relaxed) == 8 * (round + 1))
            #expect(fe.waitForUsed(0, count: 8).count == 8)
        }
        // SET_MEM_TABLE (replace) drains too: removed + added callbacks.
        for _ in 0..<4 { q.add(memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true) }
        fe.kick(0)
        #expect(waitUntil { device.outstanding.load(ordering: .relaxed) > 0 })
        try fe.setMemTable(memory)
        #expect(device.completed.load(ordering: .relaxed) == 28)
        #expect(fe.waitForUsed(0, count: 4).count == 4)
        let seen = device.outstandingAtCallbacks.withLock { $0 }
        #expect(seen.count == 1 + 3 + 2) // initial add, add/remove/add, remove+add
        #expect(seen.allSatisfy { $0 == 0 })
    }

    /// A server for a MemoryBlockDevice with a short drain bound.
    private func shortDrainRig(_ tag: String) throws -> (MemoryBlockDevice, VhostUserServer, DriverMemory, VhostUserFrontend) {
        let path = socketPath(tag)
        let device = MemoryBlockDevice(capacityBytes: 1 << 20)
        let server = try VhostUserServer(path: path, device: device,
                                         options: VhostUserOptions(drainTimeoutNanoseconds: 100_000_000))
        try server.start()
        let memory = try DriverMemory(regions: [(0x10000, 4 << 20), (0x1000_0000, 1 << 20)])
        return (device, server, memory, try VhostUserFrontend(path: path))
    }

    /// No quiesce lies: when the drain runs out of time (the device still
    /// holds requests: a stalled target), the device is made to abort them
    /// before the memory change is applied; they complete with IOERR while
    /// the ring still exists, nothing stays outstanding, and the next quiesce
    /// does not wait again. Before: the worker acknowledged after 5 s with
    /// the requests still out, and `outstanding` never returned to 0.
    @Test func drainThatRunsOutAbortsBeforeTheChange() throws {
        let (device, server, memory, fe) = try shortDrainRig("abort")
        defer { server.stop() }
        try fe.negotiate(wanted: blockFeatures)
        let descriptors = VhostUserFrontend.regionDescriptors(memory)
        try fe.setMemTable([descriptors[0]], fd: memory.fd)
        let q = SplitDriverQueue(memory: memory, size: 16, eventIdx: false)
        try fe.setUpRing(0, driver: q)
        device.holdCompletions(true)
        let reqs = (0..<3).map { _ in memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0) }
        for r in reqs { q.add(r, write: true) }
        fe.kick(0)
        #expect(waitUntil { device.heldCount == 3 })

        try fe.addMemoryRegion(descriptors[1], fd: memory.fd)
        // The change was answered only after the abort: nothing held, all three failed.
        #expect(device.heldCount == 0)
        let used = fe.waitForUsed(0, count: 3)
        #expect(used.count == 3 && used.allSatisfy { $0.length == 1 })
        for r in reqs { #expect(memory.read(r.status, count: 1) == [VirtioBlk.Status.ioError.rawValue]) }
        let session = try #require(server.session)
        let worker = try #require(session.vrings[0].worker)
        #expect(worker.drainAborts.load(ordering: .relaxed) == 1)
        #expect(worker.drainTimedOut.load(ordering: .relaxed) == 0)

        // The ring works on, and the next quiesce finds nothing out.
        device.holdCompletions(false)
        q.add(memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0), write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).first?.length == 1)
        try fe.removeMemoryRegion(descriptors[1])
        #expect(worker.drainAborts.load(ordering: .relaxed) == 1)
    }

    /// A driver that makes a head available again while the device still
    /// holds it breaks the ring: the ring stops (err signalled, counted) and
    /// the duplicate never reaches the device, so the original keeps its
    /// inflight entry and completes once. Before: the duplicate was handed
    /// out too (a remote disk completed it at once with length 0, clearing
    /// the original's inflight bit).
    @Test func headMadeAvailableWhileInFlightBreaksTheRing() throws {
        let rig = try BlockRig(tag: "repost", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let inflight = try fe.inflightBuffer(numQueues: 1, queueSize: 16)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: false)
        let ring = try fe.setUpRing(0, driver: q)
        let errFD = try EventFD()
        try fe.request(.setVringErr, payload: u64(0), fds: [errFD.rawValue])
        rig.device.holdCompletions(true)
        let r = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        let head = q.add(r, write: true)
        fe.kick(0)
        #expect(waitUntil { rig.device.heldCount == 1 })

        // The same head once more, straight into the avail ring.
        let next = UInt16(truncatingIfNeeded: 1)
        q.writeAvailRing(slot: next, head: head)
        q.forceAvailIdx(next &+ 1)
        ring.kick.signal()
        let vring = try #require(rig.server.session?.vrings[0])
        #expect(waitUntil { errFD.drain() > 0 }, "the broken ring did not signal err")
        let session = try #require(rig.server.session)
        #expect(waitUntil { session.ringStops.count.load(ordering: .relaxed) == 1 }, "the stop is reported (and logged) once")
        #expect(rig.device.heldCount == 1)
        let view = try MemoryMapping(fd: inflight.fd, offset: 0, count: Int(inflight.descriptor.mmapSize))
        #expect(view.baseAddress.load(fromByteOffset: 16 + 16 * Int(head), as: UInt8.self) == 1)
        // The ring's counters are its worker's: read them once the worker is
        // joined (stop), not while it runs.
        rig.server.stop()
        #expect(vring.counters.brokenByDriver == 1)
    }
}
