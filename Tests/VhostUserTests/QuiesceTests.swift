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
    let outstandingAtCallbacks = Mutex<[Int]>([])

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
}
