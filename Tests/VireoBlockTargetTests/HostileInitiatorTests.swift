import CVireoVerbs
import Foundation
import Logging
import Testing
@testable import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoWire
import VireoTestSupport
@testable import VireoTarget
#if canImport(Glibc)
import Glibc
#endif

/// A hostile fake initiator against the target (issue 10): malformed capsules,
/// out-of-range ranges and segments, more commands than credits, a peer that
/// vanishes without DISCONNECT. Each case checks that the daemon lives, that a
/// second connection on the same worker keeps being served correctly *while*
/// the bad one misbehaves, that a good client is served afterwards, and what
/// the target logged and counted about the bad peer.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct HostileInitiatorTests {
    let host = RDMAEnvironment.address

    /// One worker: the bad and the good connection share it.
    static func daemon(_ exports: [ExportConfig], log: CapturedLog, sharedReceives: Int = TargetConfig().sharedReceives) throws -> TargetDaemon {
        var config = TargetConfig(listen: "\(RDMAEnvironment.address):0", workers: 1, exports: exports)
        config.sharedReceives = sharedReceives
        // Short liveness timers, so a vanished peer is found in seconds (defaults: 5 s and 15 s).
        config.keepaliveSeconds = 1
        config.peerTimeoutSeconds = 4
        let d = try TargetDaemon(config: config, logger: log.logger())
        try d.start()
        return d
    }

    /// A good client on its own thread doing verified write/read rounds until stopped.
    final class Bystander: @unchecked Sendable {
        // SAFETY: the counters are guarded by `lock`; the client lives on the thread.
        private let lock = NSLock()
        private var stopFlag = false
        private var failures: [String] = []
        private var done = 0
        private var thread: OSThread?

        init(host: String, port: UInt16, export: String) throws {
            thread = try OSThread(name: "bystander") { [self] in
                do {
                    let c = try BlockTestClient(host: host, port: port, name: export, hostName: "bystander")
                    var round: UInt64 = 0
                    while !isStopped || rounds == 0 {
                        try TargetIntegrationTests.writeReadPattern(c, bytes: 256 << 10, at: (round % 8) << 20, seed: round)
                        round += 1
                        lock.lock(); done += 1; lock.unlock()
                    }
                } catch {
                    lock.lock(); failures.append("\(error)"); lock.unlock()
                }
            }
        }

        private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopFlag }
        var rounds: Int { lock.lock(); defer { lock.unlock() }; return done }

        /// Waits until it has done `n` more rounds (it is being served).
        func waitForRounds(_ n: Int, timeoutSeconds: Int = 120) -> Bool {
            let target = rounds + n
            for _ in 0..<(timeoutSeconds * 20) where rounds < target {
                if !errors.isEmpty { return false }
                usleep(50_000)
            }
            return rounds >= target
        }

        var errors: [String] { lock.lock(); defer { lock.unlock() }; return failures }

        /// Stops after the current round; returns the rounds done and the errors seen.
        func stop() -> (rounds: Int, errors: [String]) {
            lock.lock(); stopFlag = true; lock.unlock()
            thread?.join()
            thread = nil
            return (rounds, errors)
        }
    }

    /// Raw capsule bytes: a header with `segments` segments of 512 bytes each in `c`'s buffer.
    static func capsule(_ c: BlockTestClient, opcode: UInt8, tag: UInt32, offset: UInt64, length: UInt32,
                        segments: Int, declared: Int? = nil) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Wire.commandHeaderSize + segments * Wire.segmentSize)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            _ = CommandWriter.writeHeader(p, opcode: .read, segmentCount: declared ?? segments, tag: tag, offset: offset,
                                          length: length)
            p.storeBytes(of: opcode, as: UInt8.self)
            for i in 0..<segments { CommandWriter.setSegment(p, i, c.segment(i * 512, 512)) }
        }
        return b
    }

    /// A memory export, adjusted by `adjust`.
    static func memory(_ name: String, size: UInt64, _ adjust: (inout ExportConfig) -> Void) -> ExportConfig {
        var e = TargetIntegrationTests.memory(name, size: size)
        adjust(&e)
        return e
    }

    /// A daemon serving the bad peer's export and "good", with a bystander already served on "good".
    static func arena(_ bad: ExportConfig, sharedReceives: Int = TargetConfig().sharedReceives) throws -> (TargetDaemon, CapturedLog, Bystander) {
        let log = CapturedLog()
        let d = try daemon([bad, TargetIntegrationTests.memory("good", size: 16 << 20)], log: log, sharedReceives: sharedReceives)
        let bystander = try Bystander(host: RDMAEnvironment.address, port: d.port, export: "good")
        #expect(bystander.waitForRounds(1))
        return (d, log, bystander)
    }

    /// Stops the bystander, which must have seen no error, then serves a fresh client on `export` (when given).
    static func finish(_ bystander: Bystander, daemon d: TargetDaemon, export: String?) throws {
        let (rounds, errors) = bystander.stop()
        #expect(errors.isEmpty, "\(errors)")
        print("bystander: \(rounds) verified rounds through the bad peer")
        guard let export else { return }
        let fresh = try BlockTestClient(host: RDMAEnvironment.address, port: d.port, name: export)
        try TargetIntegrationTests.writeReadPattern(fresh, bytes: 1 << 20)
    }

    static func waitFor(_ what: () -> Bool, seconds: Int = 60) -> Bool {
        for _ in 0..<(seconds * 10) where !what() { usleep(100_000) }
        return what()
    }

    @Test func malformedCapsulesFailOnlyThemAndAreLoggedAndCounted() throws {
        let (d, log, bystander) = try Self.arena(TargetIntegrationTests.memory("bad", size: 8 << 20))
        defer { d.stop() }
        let bad = try BlockTestClient(host: host, port: d.port, name: "bad", segments: 4, queueIndex: 3)
        #expect(bad.geometry.maxSegments == 4)
        // Five segments where four were negotiated (the size matches the five).
        var r = try bad.runRaw(Self.capsule(bad, opcode: 1, tag: 1, offset: 0, length: 5 * 512, segments: 5))
        #expect(r.tag == 1 && r.status == .invalid)
        // Unknown opcode; a segment count that does not match the bytes received.
        r = try bad.runRaw(Self.capsule(bad, opcode: 0x7f, tag: 2, offset: 0, length: 512, segments: 1))
        #expect(r.tag == 2 && r.status == .unsupported)
        r = try bad.runRaw(Self.capsule(bad, opcode: 1, tag: 3, offset: 0, length: 1024, segments: 1, declared: 2))
        #expect(r.tag == 3 && r.status == .invalid)
        // Out-of-range LBAs: at the end, straddling it, and wrapping around 2^64.
        #expect(try bad.run(.read, tag: 4, offset: 8 << 20, length: 512, segments: [bad.segment(0, 512)]) == .outOfRange)
        #expect(try bad.run(.write, tag: 5, offset: (8 << 20) - 512, length: 1024, segments: [bad.segment(0, 1024)]) == .outOfRange)
        #expect(try bad.run(.writeZeroes, tag: 6, offset: UInt64.max - 511, length: 1024) == .outOfRange)
        // A segment whose address + length wraps.
        let wrap = WireSegment(address: UInt64.max - 100, length: 512, rkey: bad.data.region.rkey)
        #expect(try bad.run(.read, tag: 7, offset: 0, length: 512, segments: [wrap]) == .invalid)
        #expect(bystander.waitForRounds(1), "the other connection is served while this one misbehaves")
        // The bad connection itself still works for good commands.
        try TargetIntegrationTests.writeReadPattern(bad, bytes: 512 << 10)
        // Counted by reason, and each logged with the peer, export, queue and check.
        let c = d.counters
        for check in [CapsuleCheck.tooManySegments, .unknownOpcode, .sizeMismatch, .badSegment] {
            #expect(c.badCommands(check) == 1, "\(check.name): \(c.badCommands(check))")
            #expect(!log.lines(containing: host, "export bad", "queue 3", check.name).isEmpty, "no log line for \(check.name)")
        }
        #expect(c.badCommands(.outOfRange) == 3)
        let stats = d.statsSnapshot().render()
        #expect(stats.contains("vireo_target_bad_commands_total{check=\"tooManySegments\"} 1"), "\(stats)")

        // A capsule too short to carry a tag: that connection alone is dropped, logged and counted.
        try bad.send(size: bad.buildRaw([1, 2, 3]))
        var event: FabricError?
        for _ in 0..<100 where event == nil { event = try bad.connection.pollEvent(timeoutMilliseconds: 100) }
        #expect(event == .disconnected)
        #expect(Self.waitFor { d.counters.droppedConnections == 1 })
        #expect(d.counters.badCommands(.truncated) == 1)
        #expect(d.counters.drops(.badCapsule) == 1)
        #expect(!log.lines(containing: "dropping", host, "export bad", "queue 3", "truncated").isEmpty)
        #expect(bystander.waitForRounds(1))
        // A good client is served afterwards, on the export the bad one used.
        try Self.finish(bystander, daemon: d, export: "bad")
    }

    /// Segments outside the memory the initiator registered: the RDMA READ (WRITE command) or
    /// RDMA WRITE (READ command) fails, and only that connection goes.
    @Test func segmentsOutsideRegisteredMemoryDropOnlyThatConnection() throws {
        let (d, log, bystander) = try Self.arena(TargetIntegrationTests.memory("bad", size: 8 << 20))
        defer { d.stop() }
        for (i, op) in [BlockOpcode.write, .read].enumerated() {
            let bad = try BlockTestClient(host: host, port: d.port, name: "bad", queueIndex: UInt16(i), dataBytes: 1 << 20)
            let past = WireSegment(address: bad.data.region.remoteAddress(offset: 1 << 20), length: 4096, rkey: bad.data.region.rkey)
            try bad.send(size: bad.build(op, tag: 1, offset: 0, length: 4096, segments: [past]))
            #expect(throws: FabricError.self) { _ = try bad.responses(1, timeoutMilliseconds: 60_000) }
            #expect(Self.waitFor { d.counters.droppedConnections == UInt64(i + 1) })
            #expect(bystander.waitForRounds(1))
        }
        #expect(d.counters.drops(.transferFailed) == 1 && d.counters.drops(.dataWriteFailed) == 1)
        #expect(!log.lines(containing: "dropping", host, "export bad", "queue 0", "transferFailed").isEmpty)
        #expect(!log.lines(containing: "dropping", host, "export bad", "queue 1", "dataWriteFailed").isEmpty)
        try Self.finish(bystander, daemon: d, export: "bad")
    }

    /// Four credits granted, sixteen commands sent at once. With receives of its own
    /// (`shared_receives = 0`) the fabric holds the excess back (receiver not ready) and the
    /// target answers each exactly once. On the worker's shared pool the excess lands in
    /// buffers other connections need: the target serves it only while the connection holds
    /// no more than its 4 credits' worth (it kept up) and drops it, counted as
    /// `creditExceeded`, the moment it holds more. Either way no command is answered twice
    /// and others are served.
    @Test(arguments: [0, 1024])
    func moreCommandsThanCreditsAreHeldBackOrTheConnectionDropped(sharedReceives: Int) throws {
        let (d, log, bystander) = try Self.arena(Self.memory("bad", size: 8 << 20) { $0.queueDepth = 4 },
                                                 sharedReceives: sharedReceives)
        defer { d.stop() }
        let bad = try BlockTestClient(host: host, port: d.port, name: "bad", depth: 16)
        #expect(bad.geometry.queueDepth == 4)
        for i in 0..<16 {
            try bad.send(slot: i, size: bad.build(slot: i, .read, tag: UInt32(i), offset: UInt64(i) * 4096, length: 4096,
                                                  segments: [bad.segment(i * 4096, 4096)]))
        }
        var rs: [(tag: UInt32, status: BlockStatus, value: UInt64)] = []
        #expect(Self.waitFor({
            rs += (try? bad.pollResponses()) ?? []
            return rs.count >= 16 || d.counters.drops(.creditExceeded) > 0
        }, seconds: 120))
        #expect(Set(rs.map(\.tag)).count == rs.count, "an answer came twice")
        #expect(rs.allSatisfy { $0.status == .ok })
        if d.counters.drops(.creditExceeded) > 0 {
            #expect(sharedReceives > 0, "receives of its own never exceed the credit")
            #expect(!log.lines(containing: "dropping", host, "export bad", "creditExceeded", "queue depth 4").isEmpty)
        } else {
            #expect(rs.map(\.tag).sorted() == (0..<16).map { UInt32($0) })
            #expect(try bad.pollResponses().isEmpty, "an answer came twice")
            try TargetIntegrationTests.writeReadPattern(bad, bytes: 1 << 20)
        }
        print("credit overrun, shared_receives \(sharedReceives): \(rs.count) answered, dropped \(d.counters.drops(.creditExceeded))")
        #expect(bystander.waitForRounds(1))
        try Self.finish(bystander, daemon: d, export: "bad")
    }

    /// Silences `client`'s QP the way a crashed host does: in RESET it answers nothing (in ERROR,
    /// rxe still acknowledges SENDs while receive buffers are posted), and there is no
    /// rdma_disconnect (no DREQ), so the target hears nothing at all.
    static func vanish(_ client: BlockTestClient) {
        var attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_RESET
        #expect(ibv_modify_qp(client.connection.queuePair.raw, &attr, Int32(IBV_QP_STATE.rawValue)) == 0)
    }

    /// After a vanished peer was dropped: it was counted and logged with its name, the bystander
    /// is still served, and the export's only queue slot is free for a fresh initiator.
    static func expectDroppedAndSlotFreed(_ d: TargetDaemon, _ log: CapturedLog, _ bystander: Bystander, queue: Int,
                                          host: String) throws {
        #expect(d.counters.drops(.peerUnreachable) == 1)
        #expect(!log.lines(containing: "dropping", host, "export one", "queue \(queue)", "peerUnreachable",
                           "no completion from the peer").isEmpty)
        #expect(bystander.waitForRounds(1))
        var next: BlockTestClient?
        for _ in 0..<50 where next == nil {
            next = try? BlockTestClient(host: host, port: d.port, name: "one")
            if next == nil { usleep(100_000) }
        }
        let fresh = try #require(next, "the vanished peer's queue slot was not released")
        try TargetIntegrationTests.writeReadPattern(fresh, bytes: 1 << 20)
        try Self.finish(bystander, daemon: d, export: nil)
    }

    /// A peer whose QP dies without rdma_disconnect (a crashed host: no DREQ) while a command is
    /// running: the target's probe (the connection is silent while it zeroes) and then its response
    /// find nobody; soft-RoCE retries them for ever (retry count 7), so the peer timeout drops the
    /// connection, counts and logs it, and frees its queue slot (the export allows one).
    @Test func peerVanishingWithoutDisconnectIsDroppedAndFreesItsSlot() throws {
        let (d, log, bystander) = try Self.arena(Self.memory("one", size: 256 << 20) { $0.maxQueues = 1 })
        defer { d.stop() }
        let bad = try BlockTestClient(host: host, port: d.port, name: "one", queueIndex: 5)
        // 256 MiB of zeroing: still running when the peer dies, right after the target acknowledged the command.
        try bad.send(size: bad.build(.writeZeroes, tag: 1, offset: 0, length: 256 << 20))
        try bad.waitForSendCompletion()
        Self.vanish(bad)
        #expect(Self.waitFor({ d.counters.droppedConnections == 1 }, seconds: 60), "the vanished peer was never dropped")
        try Self.expectDroppedAndSlotFreed(d, log, bystander, queue: 5, host: host)
        withExtendedLifetime(bad) {}
    }

    /// An idle peer that vanishes has nothing posted to it for retries to fail: the keepalive
    /// probe (a zero-length RDMA WRITE) finds it gone, and the connection is dropped.
    @Test func idlePeerVanishingIsFoundByTheKeepaliveProbe() throws {
        let (d, log, bystander) = try Self.arena(Self.memory("one", size: 16 << 20) { $0.maxQueues = 1 })
        defer { d.stop() }
        let idle = try BlockTestClient(host: host, port: d.port, name: "one", queueIndex: 6)
        try TargetIntegrationTests.writeReadPattern(idle, bytes: 64 << 10)
        // A live idle peer answers the probes and stays connected.
        let probes = d.counters.livenessProbes
        #expect(Self.waitFor({ d.counters.livenessProbes >= probes + 2 }, seconds: 30), "an idle connection was not probed")
        #expect(d.counters.droppedConnections == 0)
        try TargetIntegrationTests.writeReadPattern(idle, bytes: 64 << 10)
        Self.vanish(idle)
        #expect(Self.waitFor({ d.counters.droppedConnections == 1 }, seconds: 60), "the vanished idle peer was never dropped")
        try Self.expectDroppedAndSlotFreed(d, log, bystander, queue: 6, host: host)
        withExtendedLifetime(idle) {}
    }
}
