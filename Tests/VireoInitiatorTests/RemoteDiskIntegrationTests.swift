import Foundation
import Logging
import Testing
import VireoDaemon
import VhostUser
import VhostUserFrontend
import Virtio
import VirtioDriver
import VireoBlockTarget
import VireoFabric
import VireoSys
@testable import VireoInitiator
import VireoTestSupport
import VireoTarget

/// The remote disk end to end: an in-process Vireo target (file export), a
/// RemoteBlockDevice served by a VhostUserServer, and VhostUserFrontend +
/// SplitDriverQueue as the guest over memfd memory with two adjacent regions.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct RemoteDiskIntegrationTests {
    static let regionSize = 6 << 20
    static let region0: UInt64 = 0x10_0000
    /// Guest-physical boundary between the two regions.
    static let boundary = region0 + UInt64(regionSize)

    /// Target + device + server + front-end, torn down in order.
    final class Rig {
        let host = RDMAEnvironment.address
        let file: String
        var port: UInt16 = 0
        var target: TargetDaemon?
        /// Targets serving the same backing on the disk's standby paths (`standbyPaths`).
        var standbyTargets: [TargetDaemon] = []
        /// Export size for the next target start; a memory export when `memoryExport`.
        var exportSize: UInt64 = 16 << 20
        let memoryExport: Bool
        let device: RemoteBlockDevice
        let server: VhostUserServer
        let memory: DriverMemory
        let frontend: VhostUserFrontend
        var queues: [SplitDriverQueue] = []
        let path: String

        /// `standbyPaths`: more targets on the same file, each a standby path of the disk; `deadPath`: a path
        /// where nothing listens, before them.
        init(tag: String, queues: Int = 2, lossTimeout: UInt64 = 120_000_000_000, memoryExport: Bool = false,
             drainTimeout: UInt64 = 5_000_000_000, standbyPaths: Int = 0, deadPath: Bool = false) throws {
            self.memoryExport = memoryExport
            file = "/tmp/vireo-init-\(getpid())-\(tag).img"
            unlink(file)
            path = "/tmp/vireo-init-\(getpid())-\(tag).sock"
            let (t, p) = try Self.makeTarget(host: host, port: 0, file: memoryExport ? nil : file, size: exportSize)
            target = t
            port = p
            var logger = Logger(label: "test.initiator.\(tag)")
            logger.logLevel = .notice
            var cfg = DiskConfig(socket: path, target: FabricAddress(host: host, port: port), export: "vol0",
                                 queues: queues, queueDepth: 64, lossTimeoutNanoseconds: lossTimeout)
            if deadPath { cfg.standbyTargets.append(FabricAddress(host: host, port: 1)) }
            for _ in 0..<standbyPaths {
                let (s, p) = try Self.makeTarget(host: host, port: 0, file: memoryExport ? nil : file, size: exportSize)
                standbyTargets.append(s)
                cfg.standbyTargets.append(FabricAddress(host: host, port: p))
            }
            device = try RemoteBlockDevice(config: cfg, logger: logger)
            server = try VhostUserServer(path: path, device: device,
                                         options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 200),
                                                                   drainTimeoutNanoseconds: drainTimeout),
                                         logger: logger)
            try server.start()
            device.onConfigChange { [weak server] in _ = try? server?.notifyConfigChange() }
            memory = try DriverMemory(regions: [(RemoteDiskIntegrationTests.region0, RemoteDiskIntegrationTests.regionSize),
                                                (RemoteDiskIntegrationTests.boundary, RemoteDiskIntegrationTests.regionSize)])
            frontend = try VhostUserFrontend(path: path)
            let fe = frontend
            try fe.negotiate(wanted: VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc
                             | VirtioBlk.Feature.flush | VirtioBlk.Feature.blockSize | VirtioBlk.Feature.multiqueue
                             | VirtioBlk.Feature.segMax | VirtioBlk.Feature.sizeMax | VirtioBlk.Feature.discard
                             | VirtioBlk.Feature.writeZeroes | VirtioBlk.Feature.topology)
            try fe.setMemTable(memory)
            for q in 0..<queues {
                let d = SplitDriverQueue(memory: memory, size: 64, eventIdx: true)
                try fe.setUpRing(q, driver: d)
                self.queues.append(d)
            }
        }

        static func makeTarget(host: String, port: UInt16, file: String?, size: UInt64) throws -> (TargetDaemon, UInt16) {
            var logger = Logger(label: "test.target")
            logger.logLevel = .warning
            var e = ExportConfig(name: "vol0", backing: file.map { .file($0) } ?? .memory, size: size)
            e.inlineMax = 4096
            let d = try TargetDaemon(config: TargetConfig(listen: "\(host):\(port)", workers: 1, exports: [e]), logger: logger)
            try d.start()
            return (d, d.port)
        }

        func startTarget() throws {
            let (t, p) = try Self.makeTarget(host: host, port: port, file: memoryExport ? nil : file, size: exportSize)
            target = t
            port = p
        }

        func stopTarget() {
            target?.stop()
            target = nil     // releases the listener so the port can be bound again
        }

        /// Adds a request on queue `q` and returns its buffers.
        @discardableResult
        func add(_ q: Int, type: VirtioBlk.RequestType, sector: UInt64, data: [UInt8] = [], readLength: Int = 0,
                 at gpa: UInt64? = nil) -> (data: UInt64, status: UInt64) {
            BlkGuestRequest.add(to: queues[q], in: memory, type: type, sector: sector, data: data, readLength: readLength, at: gpa)
        }

        func status(_ s: UInt64) -> UInt8 { memory.read(s, count: 1)[0] }

        deinit {
            frontend.close()
            server.stop()
            device.stop()
            target?.stop()
            for t in standbyTargets { t.stop() }
            unlink(file)
        }
    }

    static func pattern(_ n: Int, seed: UInt8) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ ($0 >> 9) &+ Int(seed)) }
    }

    @Test func everyCommandTypeWithDataVerified() throws {
        let rig = try Rig(tag: "cmds")
        let fe = rig.frontend
        // Config space from the target's geometry.
        let cfg = try fe.config(size: 60)
        func u32(_ o: Int) -> UInt32 { cfg.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == (16 << 20) / 512)
        #expect(u32(20) == 512)
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 34, as: UInt16.self) } == 2)
        #expect(u32(12) >= 1 && UInt64(u32(12)) * UInt64(u32(8)) <= 1 << 20)   // seg_max × size_max ≤ max I/O
        #expect(fe.features & VirtioBlk.Feature.flush != 0 && fe.features & VirtioBlk.Feature.discard != 0)

        // WRITE 256 KiB on queue 0 (segments), READ it back on queue 1.
        let big = RemoteDiskIntegrationTests.pattern(256 << 10, seed: 1)
        let w = rig.add(0, type: .out, sector: 64, data: big)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).first?.length == 1)
        #expect(rig.status(w.status) == 0)
        let r = rig.add(1, type: .in, sector: 64, readLength: big.count)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 20_000).first?.length == UInt32(big.count) + 1)
        #expect(rig.status(r.status) == 0)
        #expect(rig.memory.read(r.data, count: big.count) == big)

        // A small WRITE goes inline (guest pieces gathered by the NIC), then READ.
        let small = RemoteDiskIntegrationTests.pattern(2048, seed: 2)
        let sw = rig.add(0, type: .out, sector: 2000, data: small)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(sw.status) == 0)
        #expect(rig.device.counters.inlineWrites.load(ordering: .relaxed) >= 1)
        let sr = rig.add(0, type: .in, sector: 2000, readLength: small.count)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.memory.read(sr.data, count: small.count) == small)

        // Buffers spanning the two guest memory regions (two wire segments, two rkeys).
        let span = RemoteDiskIntegrationTests.pattern(16 << 10, seed: 3)
        let spanAt = RemoteDiskIntegrationTests.boundary - 8192
        let xw = rig.add(1, type: .out, sector: 4096, data: span, at: spanAt)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(xw.status) == 0)
        rig.memory.fill(spanAt, count: span.count, byte: 0)
        let xr = rig.add(1, type: .in, sector: 4096, readLength: span.count, at: spanAt)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(xr.status) == 0)
        #expect(rig.memory.read(spanAt, count: span.count) == span)

        // FLUSH, GET_ID, DISCARD and WRITE_ZEROES over the first write, read back zeroes.
        let f = rig.add(0, type: .flush, sector: 0)
        let id = rig.add(0, type: .getID, sector: 0, readLength: 20)
        let seg1 = VirtioBlk.DiscardWriteZeroesSegment(sector: 64, numSectors: 8).bytes
        let dc = rig.add(0, type: .discard, sector: 0, data: seg1)
        let seg2 = VirtioBlk.DiscardWriteZeroesSegment(sector: 72, numSectors: 8,
                                                       flags: VirtioBlk.DiscardWriteZeroesSegment.flagUnmap).bytes
        let wz = rig.add(0, type: .writeZeroes, sector: 0, data: seg2)
        let oob = rig.add(0, type: .in, sector: (16 << 20) / 512 - 1, readLength: 1024)
        fe.kick(0)
        let used = fe.waitForUsed(0, count: 5, timeoutMilliseconds: 20_000)
        #expect(used.count == 5)
        #expect([f, dc, wz].map { rig.status($0.status) } == [0, 0, 0])
        #expect(rig.status(id.status) == 0)
        #expect(Array(rig.memory.read(id.data, count: 4)) == Array("vol0".utf8))
        #expect(rig.status(oob.status) == 1)            // out of range: IOERR
        let z = rig.add(1, type: .in, sector: 64, readLength: 16 * 512)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.memory.read(z.data, count: 16 * 512).allSatisfy { $0 == 0 })

        #expect(rig.device.counters.payloadBytesCopied.load(ordering: .relaxed) == 0)
        #expect(rig.device.counters.connectionsLost.load(ordering: .relaxed) == 0)
    }

    @Test func targetRestartHoldsRequestsAndResubmitsThem() throws {
        let rig = try Rig(tag: "restart")
        let fe = rig.frontend
        let a = RemoteDiskIntegrationTests.pattern(64 << 10, seed: 9)
        let wa = rig.add(0, type: .out, sector: 0, data: a)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(wa.status) == 0)

        // Target goes away: new requests are held, not failed.
        rig.stopTarget()
        let b = RemoteDiskIntegrationTests.pattern(64 << 10, seed: 10)
        let wb = rig.add(0, type: .out, sector: 1024, data: b)
        let ra = rig.add(1, type: .in, sector: 0, readLength: a.count)
        fe.kick(0)
        fe.kick(1)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 1500).isEmpty)
        #expect(waitFor(10) { rig.device.counters.connectionsLost.load(ordering: .relaxed) >= 1 })
        #expect(rig.device.queuedRequests >= 1)

        // Target restarts on the same port with the same file: held requests complete.
        try rig.startTarget()
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 30_000).count == 1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 30_000).count == 1)
        #expect(rig.status(wb.status) == 0)
        #expect(rig.status(ra.status) == 0)
        #expect(rig.memory.read(ra.data, count: a.count) == a)
        let rb = rig.add(0, type: .in, sector: 1024, readLength: b.count)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.memory.read(rb.data, count: b.count) == b)
        #expect(rig.device.counters.reconnects.load(ordering: .relaxed) >= 1)
        #expect(rig.device.counters.resubmitted.load(ordering: .relaxed) >= 1)
        #expect(rig.device.counters.payloadBytesCopied.load(ordering: .relaxed) == 0)
    }

    /// A gateway group's standby paths are probed, not connected: a live standby answers (its
    /// target allocates nothing), a dead one is marked failed; when the active target goes,
    /// both queues move to the live standby, skipping the dead path, and data written
    /// before reads back after.
    @Test func standbyPathsAreProbedAndFailoverSkipsADeadOne() throws {
        let rig = try Rig(tag: "paths", standbyPaths: 1, deadPath: true)
        let fe = rig.frontend
        let paths = try #require(rig.device.paths)
        let standby = try #require(rig.standbyTargets.first)
        #expect(waitFor(10) { paths.snapshot().map(\.state) == [.active, .failed, .standby] })
        let dead = paths.snapshot()[1]
        #expect(dead.lastError?.contains("nothing listens") == true, "\(dead.lastError ?? "-")")
        func probes() -> Int {
            standby.statsSnapshot().render().split(separator: "\n")
                .first { $0.hasPrefix("vireo_target_path_probes_total ") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        }
        #expect(waitFor(10) { probes() >= 1 })
        #expect(standby.statsSnapshot().render().contains("vireo_target_connections_accepted_total 0"),
                "a probe allocates no connection")

        let a = RemoteDiskIntegrationTests.pattern(64 << 10, seed: 21)
        let wa = rig.add(0, type: .out, sector: 0, data: a)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(wa.status) == 0)

        rig.stopTarget()
        let ra = rig.add(1, type: .in, sector: 0, readLength: a.count)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 30_000).count == 1)
        #expect(rig.status(ra.status) == 0)
        #expect(rig.memory.read(ra.data, count: a.count) == a)
        #expect(paths.active == 2, "the live standby carries I/O")
        #expect(paths.switches.load(ordering: .relaxed) == 1, "straight there: the dead path was skipped")
        let wb = rig.add(0, type: .out, sector: 256, data: a)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 30_000).count == 1)
        #expect(rig.status(wb.status) == 0)
        #expect(waitFor(10) { paths.snapshot()[0].state == .failed }, "the stopped target is probed as failed")
        try rig.startTarget()
        #expect(waitFor(10) { paths.snapshot()[0].state == .standby }, "and as standby once it is back")
    }

    @Test func targetStoppedWithCommandsInFlightLosesNoAcknowledgedWrite() throws {
        let rig = try Rig(tag: "inflight")
        let fe = rig.frontend
        // 24 × 64 KiB writes over both queues; the target stops while they are moving.
        let chunks = (0..<24).map { RemoteDiskIntegrationTests.pattern(64 << 10, seed: UInt8($0)) }
        var statuses: [UInt64] = []
        for (i, c) in chunks.enumerated() {
            statuses.append(rig.add(i % 2, type: .out, sector: UInt64(i) * 128, data: c).status)
        }
        fe.kick(0)
        fe.kick(1)
        _ = waitFor(5) { rig.device.counters.commandsSent.load(ordering: .relaxed) >= 4 }
        rig.stopTarget()
        try rig.startTarget()
        #expect(fe.waitForUsed(0, count: 12, timeoutMilliseconds: 60_000).count == 12)
        #expect(fe.waitForUsed(1, count: 12, timeoutMilliseconds: 60_000).count == 12)
        #expect(statuses.allSatisfy { rig.status($0) == 0 })
        // Every write reads back intact.
        var reads: [UInt64] = []
        for i in 0..<chunks.count { reads.append(rig.add(i % 2, type: .in, sector: UInt64(i) * 128, readLength: 64 << 10).data) }
        fe.kick(0)
        fe.kick(1)
        #expect(fe.waitForUsed(0, count: 12, timeoutMilliseconds: 60_000).count == 12)
        #expect(fe.waitForUsed(1, count: 12, timeoutMilliseconds: 60_000).count == 12)
        for (i, c) in chunks.enumerated() { #expect(rig.memory.read(reads[i], count: c.count) == c, "chunk \(i)") }
        #expect(rig.device.counters.reconnects.load(ordering: .relaxed) >= 1)
        #expect(rig.device.counters.payloadBytesCopied.load(ordering: .relaxed) == 0)
    }

    @Test func capacityChangeOnReconnectSendsConfigChange() throws {
        let rig = try Rig(tag: "resize", queues: 1, memoryExport: true)
        let fe = rig.frontend
        let backend = try fe.openBackendChannel()
        _ = try fe.config(size: 60)             // a reply: SET_BACKEND_REQ_FD was handled
        rig.stopTarget()
        rig.exportSize = 32 << 20
        try rig.startTarget()
        #expect(waitFor(30) { rig.device.geometry.capacityBytes == 32 << 20 })
        let frame = try backend.readFrame()
        #expect(frame?.0.request == VhostUserBackendRequest.configChangeMsg.rawValue)
        let cfg = try fe.config(size: 60)
        #expect(cfg.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == (32 << 20) / 512)
        // The new space is usable once the queue has reconnected.
        let r = rig.add(0, type: .in, sector: (24 << 20) / 512, readLength: 4096)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 30_000).count == 1)
        #expect(rig.status(r.status) == 0)
    }

    /// export_resize online (issue #14): the target grows the file export while the disk has
    /// data on it and a write is submitted at once; the connection is remade, the initiator
    /// sends CONFIG_CHANGE with the new capacity, the new space is usable, the old data is
    /// intact and no request fails.
    @Test func exportResizeReachesTheGuestOnline() throws {
        let rig = try Rig(tag: "grow", queues: 1)
        let fe = rig.frontend
        let backend = try fe.openBackendChannel()
        _ = try fe.config(size: 60)
        let before = Self.pattern(64 << 10, seed: 7)
        let w = rig.add(0, type: .out, sector: 128, data: before)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 10_000).count == 1 && rig.status(w.status) == 0)
        let target = try #require(rig.target)
        let api = ControlProtocol(methods: target.controlMethods())
        let request: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "export_resize", "params": ["name": "vol0", "size": "32M"]]
        let answer = JSONValue.parse(api.respond(to: request.encoded)!)
        #expect(answer?["result"]?["capacity"] == .int(32 << 20), "\(String(describing: answer))")
        let during = Self.pattern(16 << 10, seed: 8)
        let w2 = rig.add(0, type: .out, sector: 4096, data: during)
        fe.kick(0)
        #expect(waitFor(30) { rig.device.geometry.capacityBytes == 32 << 20 })
        #expect(try backend.readFrame()?.0.request == VhostUserBackendRequest.configChangeMsg.rawValue)
        #expect(try fe.config(size: 60).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == (32 << 20) / 512)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 30_000).count == 1 && rig.status(w2.status) == 0,
                "a write submitted during the resize completes")
        let tail = Self.pattern(4096, seed: 9)
        let w3 = rig.add(0, type: .out, sector: (30 << 20) / 512, data: tail)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 30_000).count == 1 && rig.status(w3.status) == 0)
        let r1 = rig.add(0, type: .in, sector: 128, readLength: before.count)
        let r3 = rig.add(0, type: .in, sector: (30 << 20) / 512, readLength: tail.count)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 2, timeoutMilliseconds: 30_000).count == 2)
        #expect(rig.status(r1.status) == 0 && rig.status(r3.status) == 0)
        let oldIntact = rig.memory.read(r1.data, count: before.count) == before
        let newHolds = rig.memory.read(r3.data, count: tail.count) == tail
        #expect(oldIntact, "old data intact")
        #expect(newHolds, "the new space holds what was written")
        #expect(rig.device.counters.ioErrors.load(ordering: .relaxed) == 0)
        let list = JSONValue.parse(api.respond(to: (["jsonrpc": "2.0", "id": 2, "method": "export_list"] as JSONValue).encoded)!)
        #expect(list?["result"]?.array?.first?["state"] == "serving")
    }

    /// No replay from another memory epoch: a WRITE held while the target is
    /// away, when the VMM stops the ring, is failed with IOERR before
    /// GET_VRING_BASE is answered; the guest then reuses the buffer, and when
    /// the target comes back the old command is not resubmitted (the LBA
    /// keeps its acknowledged data). Before: the held WRITE was replayed
    /// after the reconnect, and the target RDMA-read the reused buffer.
    @Test func writeHeldAcrossAStopIsFailedNotReplayed() throws {
        let rig = try Rig(tag: "noreplay", drainTimeout: 300_000_000)
        let fe = rig.frontend
        let a = RemoteDiskIntegrationTests.pattern(8192, seed: 21)
        let wa = rig.add(0, type: .out, sector: 64, data: a)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(wa.status) == 0)

        rig.stopTarget()
        let b = RemoteDiskIntegrationTests.pattern(8192, seed: 22)
        let wb = rig.add(0, type: .out, sector: 64, data: b)
        fe.kick(0)
        #expect(waitFor(10) { rig.device.counters.connectionsLost.load(ordering: .relaxed) >= 1 && rig.device.queuedRequests >= 1 })

        // The VMM stops the ring: answered only after the held write failed.
        _ = try fe.vringBase(0)
        #expect(rig.status(wb.status) == VirtioBlk.Status.ioError.rawValue)
        #expect(rig.device.counters.abortedByQuiesce.load(ordering: .relaxed) == 1)
        #expect(rig.device.queuedRequests == 0)
        // The guest reuses the buffer for something else.
        rig.memory.write(RemoteDiskIntegrationTests.pattern(8192, seed: 23), at: wb.data)

        try rig.startTarget()
        #expect(waitFor(30) { rig.device.counters.reconnects.load(ordering: .relaxed) >= 2 })
        let r = rig.add(1, type: .in, sector: 64, readLength: a.count)
        fe.kick(1)
        #expect(fe.waitForUsed(1, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(r.status) == 0)
        #expect(rig.memory.read(r.data, count: a.count) == a, "the failed write was replayed")
    }

    @Test func lossTimeoutFailsHeldRequestsWithIOERR() throws {
        let rig = try Rig(tag: "timeout", queues: 1, lossTimeout: 2_000_000_000)
        let fe = rig.frontend
        rig.stopTarget()
        let r = rig.add(0, type: .in, sector: 0, readLength: 4096)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(rig.status(r.status) == 1)
        #expect(rig.device.counters.failedAfterLossTimeout.load(ordering: .relaxed) >= 1)
    }

    @Test func rejectMessageIsCarriedVerbatim() throws {
        var logger = Logger(label: "test.target")
        logger.logLevel = .warning
        let t = try TargetDaemon(config: TargetConfig(listen: "\(RDMAEnvironment.address):0", workers: 1,
                                                      exports: [ExportConfig(name: "vol0", backing: .memory, size: 1 << 20)]),
                                 logger: logger)
        try t.start()
        defer { t.stop() }
        let cfg = DiskConfig(socket: "/tmp/unused.sock", target: FabricAddress(host: RDMAEnvironment.address, port: t.port),
                             export: "nope")
        do {
            _ = try RemoteBlockDevice(config: cfg)
            Issue.record("connected to a missing export")
        } catch {
            guard case .rejected(_, _, _, let reason, let message) = error else {
                Issue.record("not a reject: \(error)")
                return
            }
            #expect(reason == .noSuchEndpoint)
            #expect(!message.isEmpty)
            #expect("\(error)".hasSuffix(message))
        }
    }
}

/// Polls `cond` for up to `seconds`.
func waitFor(_ seconds: Double, _ cond: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if cond() { return true }
        usleep(2000)
    }
    return cond()
}

/// The initiator against a hostile target: each misbehaviour costs that
/// connection alone (counted, logged, reconnected), the request is held and
/// completes on a sane connection, and another disk of the same process
/// keeps being served through it.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled)) struct HostileTargetTests {
    final class FakeDisk {
        let fake: FakeBlockTarget
        let device: RemoteBlockDevice
        let server: VhostUserServer
        let memory: DriverMemory
        let frontend: VhostUserFrontend
        let queue: SplitDriverQueue

        init(tag: String, plan: [FakeBlockTarget.Behaviour], grants: [UInt16] = [8]) throws {
            fake = try FakeBlockTarget(host: RDMAEnvironment.address, plan: plan, grants: grants)
            let path = "/tmp/vireo-hostile-\(getpid())-\(tag).sock"
            var logger = Logger(label: "test.hostile.\(tag)")
            logger.logLevel = .notice
            let cfg = DiskConfig(socket: path, target: FabricAddress(host: RDMAEnvironment.address, port: fake.port),
                                 export: "vol0", queues: 1, queueDepth: 16)
            device = try RemoteBlockDevice(config: cfg, logger: logger)
            server = try VhostUserServer(path: path, device: device,
                                         options: VhostUserOptions(drainTimeoutNanoseconds: 300_000_000), logger: logger)
            try server.start()
            memory = try DriverMemory(size: 4 << 20)
            frontend = try VhostUserFrontend(path: path)
            try frontend.negotiate(wanted: VirtioFeatures.version1 | VirtioBlk.Feature.flush | VirtioBlk.Feature.segMax)
            try frontend.setMemTable(memory)
            queue = SplitDriverQueue(memory: memory, size: 16, eventIdx: false)
            try frontend.setUpRing(0, driver: queue)
        }

        /// Adds a FLUSH and returns its status address.
        func flush() -> UInt64 {
            let h = memory.allocate(16, alignment: 16)
            memory.write(VirtioBlk.RequestHeader(type: VirtioBlk.RequestType.flush.rawValue, sector: 0).bytes, at: h)
            let s = memory.allocate(1, alignment: 1)
            memory.fill(s, count: 1, byte: 0xee)
            _ = queue.add(readable: [DriverBuffer(gpa: h, length: 16)], writable: [DriverBuffer(gpa: s, length: 1)])
            frontend.kick(0)
            return s
        }

        deinit {
            frontend.close()
            server.stop()
            device.stop()
            fake.stop()
        }
    }

    /// Wrong tag, short response, unknown status, duplicate response: each
    /// breaks one connection (counted as a bad response), the FLUSH is held
    /// and resubmitted on the next one, and completes OK; a later connection
    /// granting 16× the segments of the first serves on. The bystander disk
    /// on a real target is served throughout.
    @Test func misbehavingTargetCostsOnlyItsConnection() throws {
        let bystander = try RemoteDiskIntegrationTests.Rig(tag: "bystander", queues: 1)
        let disk = try FakeDisk(tag: "bad", plan: [.wrongTag, .shortResponse, .unknownStatus, .duplicate, .answer],
                                grants: [8, 8, 8, 8, 128])
        let first = disk.flush()
        #expect(disk.frontend.waitForUsed(0, count: 1, timeoutMilliseconds: 30_000).count == 1)
        #expect(disk.memory.read(first, count: 1) == [VirtioBlk.Status.ok.rawValue])
        // The worker counts a reconnect after it adopted the connection (isConnected): wait for the count too.
        #expect(waitFor(20) { disk.fake.connections.load(ordering: .relaxed) >= 5 && disk.device.queues[0].isConnected
                && disk.device.counters.reconnects.load(ordering: .relaxed) >= 4 })
        #expect(disk.device.counters.badResponses.load(ordering: .relaxed) == 4)

        let second = disk.flush()
        #expect(disk.frontend.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(disk.memory.read(second, count: 1) == [VirtioBlk.Status.ok.rawValue])

        let s = bystander.add(0, type: .flush, sector: 0)
        bystander.frontend.kick(0)
        #expect(bystander.frontend.waitForUsed(0, count: 1, timeoutMilliseconds: 20_000).count == 1)
        #expect(bystander.status(s.status) == 0)
    }

    /// A target that accepts commands and never answers: when the VMM stops
    /// the ring, the command is cut off (QP to error) and failed with IOERR
    /// before GET_VRING_BASE is answered.
    @Test func silentTargetCannotStallAStop() throws {
        let disk = try FakeDisk(tag: "silent", plan: [.silent])
        let s = disk.flush()
        #expect(waitFor(10) { disk.fake.commands.load(ordering: .relaxed) >= 1 })
        _ = try disk.frontend.vringBase(0)
        #expect(disk.memory.read(s, count: 1) == [VirtioBlk.Status.ioError.rawValue])
        #expect(disk.device.counters.abortedByQuiesce.load(ordering: .relaxed) == 1)
    }
}
