import Logging
import Testing
import VhostUser
import VhostUserFrontend
import Virtio
import VirtioDriver
import VireoFabric
import VireoSys
@testable import VireoInitiator
import VireoTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The remote disk's request engine (`RemoteQueue`, with its device shell and
/// fabric supervisor) over the fake verbs layer, on the host: a vhost-user
/// front-end drives a `RemoteBlockDevice` whose queues connect through
/// `FakeBlockFabric` to real target queues on a memory export. Normal flow, loss
/// and reconnect (flushed work), credit exhaustion and the loss timeout run here
/// in seconds with no RDMA device; the lab's RemoteDiskIntegrationTests run the
/// same engine over rxe.
@Suite(.serialized) struct RemoteQueueEngineTests {
    static let region0: UInt64 = 0x10_0000
    static let regionSize = 4 << 20

    final class Rig {
        let fabric: FakeBlockFabric
        let device: RemoteBlockDevice
        let server: VhostUserServer
        let memory: DriverMemory
        let frontend: VhostUserFrontend
        var queues: [SplitDriverQueue] = []
        let path: String

        init(tag: String, queues: Int = 2, exportQueueDepth: Int = 128, lossTimeout: UInt64 = 120_000_000_000,
             remoteAccess: DiskConfig.RemoteAccess = .windows) throws {
            path = "/tmp/vireo-fake-\(getpid())-\(tag).sock"
            var logger = Logger(label: "test.initiator.\(tag)")
            logger.logLevel = .warning
            var cfg = DiskConfig(socket: path, target: FabricAddress(host: "10.99.0.1", port: 4420), export: "vol0",
                                 queues: queues, queueDepth: 64, lossTimeoutNanoseconds: lossTimeout)
            cfg.remoteAccess = remoteAccess
            fabric = try FakeBlockFabric(config: cfg, exportQueueDepth: exportQueueDepth)
            device = try RemoteBlockDevice(config: cfg, connector: fabric, logger: logger)
            server = try VhostUserServer(path: path, device: device,
                                         options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 200)),
                                         logger: logger)
            try server.start()
            memory = try DriverMemory(regions: [(RemoteQueueEngineTests.region0, RemoteQueueEngineTests.regionSize)])
            frontend = try VhostUserFrontend(path: path)
            try frontend.negotiate(wanted: VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioBlk.Feature.flush
                                   | VirtioBlk.Feature.blockSize | VirtioBlk.Feature.multiqueue | VirtioBlk.Feature.segMax
                                   | VirtioBlk.Feature.sizeMax)
            try frontend.setMemTable(memory)
            for q in 0..<queues {
                let d = SplitDriverQueue(memory: memory, size: 64, eventIdx: true)
                try frontend.setUpRing(q, driver: d)
                self.queues.append(d)
            }
        }

        /// Adds a request on queue `q`; returns its data and status addresses.
        @discardableResult
        func add(_ q: Int, type: VirtioBlk.RequestType, sector: UInt64, data: [UInt8] = [], readLength: Int = 0)
            -> (data: UInt64, status: UInt64) {
            BlkGuestRequest.add(to: queues[q], in: memory, type: type, sector: sector, data: data, readLength: readLength)
        }

        func status(_ s: UInt64) -> UInt8 { memory.read(s, count: 1)[0] }

        /// Whether the export holds `bytes` at `sector` (a Bool, so a failure does not print both arrays).
        func exportHolds(_ bytes: [UInt8], sector: UInt64) -> Bool {
            Array(UnsafeRawBufferPointer(start: fabric.export.store.memory! + Int(sector) * 512, count: bytes.count)) == bytes
        }

        deinit {
            frontend.close()
            server.stop()
            device.stop()
            fabric.stop()
        }
    }

    static func pattern(_ n: Int, seed: UInt8) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ ($0 >> 9) &+ Int(seed)) }
    }

    /// Normal flow: a segmented WRITE, a READ on the other queue, a small (inline) WRITE,
    /// FLUSH, and an out-of-range READ answered IOERR; no payload byte copied by the initiator.
    @Test func commandsRoundTrip() throws {
        let rig = try Rig(tag: "flow")
        let fe = rig.frontend
        let big = Self.pattern(64 << 10, seed: 1)
        let w = rig.add(0, type: .out, sector: 64, data: big)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).first?.length == 1)
        #expect(rig.status(w.status) == 0)
        #expect(rig.exportHolds(big, sector: 64), "the target's RDMA READs fetched the guest's bytes")
        let r = rig.add(1, type: .in, sector: 64, readLength: big.count)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 10_000).first?.length == UInt32(big.count) + 1)
        let readBack = rig.memory.read(r.data, count: big.count) == big
        #expect(readBack, "the target's RDMA WRITEs landed in the guest's buffer")

        let small = Self.pattern(2048, seed: 2)
        let sw = rig.add(0, type: .out, sector: 2000, data: small)
        let f = rig.add(0, type: .flush, sector: 0)
        let oob = rig.add(0, type: .in, sector: (16 << 20) / 512, readLength: 512)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 3, timeoutMilliseconds: 10_000).count == 3)
        #expect([rig.status(sw.status), rig.status(f.status), rig.status(oob.status)] == [0, 0, 1])
        #expect(rig.exportHolds(small, sector: 2000))
        #expect(rig.device.counters.inlineWrites.load(ordering: .relaxed) >= 1, "gathered from guest memory by the NIC")
        #expect(rig.device.counters.payloadBytesCopied.load(ordering: .relaxed) == 0)
        #expect(rig.fabric.connects.load(ordering: .relaxed) == 2)
    }

    /// Loss and reconnect: commands posted but not carried when every connection is cut
    /// (their work flushes) are held, not failed; once the target takes connections again
    /// they are resubmitted on the new ones, and every acknowledged write is in the export.
    @Test func cutConnectionsHoldAndResubmitCommands() throws {
        let rig = try Rig(tag: "cut")
        let fe = rig.frontend
        rig.fabric.held.store(true, ordering: .releasing)
        let chunks = (0..<8).map { Self.pattern(16 << 10, seed: UInt8(10 + $0)) }
        var statuses: [UInt64] = []
        for (i, c) in chunks.enumerated() { statuses.append(rig.add(i % 2, type: .out, sector: UInt64(i) * 32, data: c).status) }
        fe.kick(0)
        fe.kick(1)
        #expect(waitFor(5) { rig.fabric.pendingCommands == 8 }, "all 8 capsules posted, none carried")
        rig.fabric.refusing.store(true, ordering: .releasing)
        rig.fabric.cutAll()
        rig.fabric.held.store(false, ordering: .releasing)
        #expect(waitFor(5) { rig.device.counters.connectionsLost.load(ordering: .relaxed) >= 2 })
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 500).isEmpty, "held, not failed")
        #expect(rig.device.queuedRequests == 8)
        rig.fabric.refusing.store(false, ordering: .releasing)
        let used = fe.waitForUsed(0, count: 4, timeoutMilliseconds: 15_000) + fe.waitForUsed(1, count: 4, timeoutMilliseconds: 15_000)
        #expect(used.count == 8)
        #expect(statuses.map { rig.status($0) } == Array(repeating: 0, count: 8))
        #expect(chunks.enumerated().allSatisfy { rig.exportHolds($1, sector: UInt64($0) * 32) })
        #expect(rig.device.counters.resubmitted.load(ordering: .relaxed) == 8)
        #expect(rig.device.counters.reconnects.load(ordering: .relaxed) >= 2)
    }

    /// Credit exhaustion: the target grants 4 commands per queue; 20 requests on one queue
    /// wait for credits in the initiator, and no capsule ever reaches the target without a
    /// receive posted for it.
    @Test func requestsBeyondTheGrantedDepthWaitForCredits() throws {
        let rig = try Rig(tag: "credits", queues: 1, exportQueueDepth: 4)
        let fe = rig.frontend
        var statuses: [UInt64] = []
        // 20 × 3 descriptors fill most of the 64-entry ring.
        for i in 0..<20 { statuses.append(rig.add(0, type: .out, sector: UInt64(i) * 8, data: Self.pattern(4096, seed: UInt8(i))).status) }
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 20, timeoutMilliseconds: 20_000).count == 20)
        #expect(statuses.allSatisfy { rig.status($0) == 0 })
        #expect(rig.fabric.receiverNotReady.load(ordering: .relaxed) == 0, "a capsule was sent beyond the granted depth")
        #expect((0..<20).allSatisfy { rig.exportHolds(Self.pattern(4096, seed: UInt8($0)), sector: UInt64($0) * 8) })
    }

    /// The loss timeout: with the target gone for good, held requests fail with IOERR once it passes.
    @Test func heldRequestsFailAfterTheLossTimeout() throws {
        let rig = try Rig(tag: "timeout", queues: 1, lossTimeout: 300_000_000)
        let fe = rig.frontend
        rig.fabric.held.store(true, ordering: .releasing)
        let w = rig.add(0, type: .out, sector: 0, data: Self.pattern(4096, seed: 1))
        fe.kick(0)
        #expect(waitFor(5) { rig.fabric.pendingCommands == 1 })
        rig.fabric.refusing.store(true, ordering: .releasing)
        rig.fabric.cutAll()
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1)
        #expect(rig.status(w.status) == 1)
        #expect(rig.device.counters.failedAfterLossTimeout.load(ordering: .relaxed) == 1)
    }

    /// A forced delete (`detach`, the control API's disk_delete with force) while the VMM
    /// is attached: a command posted but never answered fails with IOERR at once (not
    /// after the loss timeout), so does every later request, and no reconnect follows.
    @Test func forcedDetachFailsHeldAndNewRequestsWithoutReconnecting() throws {
        let rig = try Rig(tag: "detach", queues: 1)
        let fe = rig.frontend
        rig.fabric.held.store(true, ordering: .releasing)
        let w = rig.add(0, type: .out, sector: 0, data: Self.pattern(4096, seed: 3))
        fe.kick(0)
        #expect(waitFor(5) { rig.fabric.pendingCommands == 1 })
        rig.device.detach()
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 5_000).count == 1, "failed at once, not held for the 120 s loss timeout")
        #expect(rig.status(w.status) == 1)
        #expect(rig.device.counters.failedDetached.load(ordering: .relaxed) == 1)
        let r = rig.add(0, type: .in, sector: 8, readLength: 4096)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 5_000).count == 1)
        #expect(rig.status(r.status) == 1, "a request after the detach fails at once")
        usleep(300_000)
        #expect(rig.fabric.connects.load(ordering: .relaxed) == 1, "no reconnect after a detach")
        #expect(rig.device.counters.reconnects.load(ordering: .relaxed) == 0)
    }
}
