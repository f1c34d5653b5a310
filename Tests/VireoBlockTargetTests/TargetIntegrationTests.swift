import CVireoSys
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

/// The target end to end over RDMA (soft-RoCE in the lab): a daemon in this
/// process, test clients connecting to it.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct TargetIntegrationTests {
    let host = RDMAEnvironment.address

    static func daemon(_ exports: [ExportConfig], workers: Int = 2) throws -> TargetDaemon {
        var logger = Logger(label: "vireo.target.test")
        logger.logLevel = .notice
        let d = try TargetDaemon(
            config: TargetConfig(listen: "\(RDMAEnvironment.address):0", workers: workers, exports: exports), logger: logger)
        try d.start()
        return d
    }

    /// Whether `count` bytes at `p` are all zero (memcmp against a zero page: fast in debug builds under TCG).
    static func isZero(_ p: UnsafeMutableRawPointer, _ count: Int) -> Bool {
        let zero = [UInt8](repeating: 0, count: 4096)
        return zero.withUnsafeBytes { z in
            stride(from: 0, to: count, by: 4096).allSatisfy { memcmp(p + $0, z.baseAddress!, min(4096, count - $0)) == 0 }
        }
    }

    static func memory(_ name: String, size: UInt64 = 64 << 20) -> ExportConfig {
        ExportConfig(name: name, backing: .memory, size: size)
    }

    /// Writes a pattern (several MiB, several segments per command), reads it back into a clean buffer, compares.
    static func writeReadPattern(_ c: BlockTestClient, bytes: Int = 4 << 20, at base: UInt64 = 0, seed: UInt64 = 42) throws {
        let chunk = Int(c.geometry.maxIOBytes)
        let half = c.data.bytes.count / 2
        #expect(bytes <= half)
        vireo_fill_pattern(c.data.bytes.baseAddress!, bytes, seed)
        let expected = vireo_checksum64(c.data.bytes.baseAddress!, bytes)
        var tag: UInt32 = 10
        for off in stride(from: 0, to: bytes, by: chunk) {
            let n = min(chunk, bytes - off)
            tag += 1
            let st = try c.run(.write, tag: tag, offset: base + UInt64(off), length: UInt32(n),
                               segments: c.segments(off, n, count: min(4, Int(c.geometry.maxSegments))))
            #expect(st == .ok)
        }
        memset(c.data.bytes.baseAddress! + half, 0, bytes)
        for off in stride(from: 0, to: bytes, by: chunk) {
            let n = min(chunk, bytes - off)
            tag += 1
            let st = try c.run(.read, tag: tag, offset: base + UInt64(off), length: UInt32(n),
                               segments: c.segments(half + off, n, count: min(8, Int(c.geometry.maxSegments))))
            #expect(st == .ok)
        }
        #expect(vireo_checksum64(c.data.bytes.baseAddress! + half, bytes) == expected)
    }

    @Test func memoryExportWriteThenReadBack() throws {
        let d = try Self.daemon([Self.memory("mem0")])
        defer { d.stop() }
        let c = try BlockTestClient(host: host, port: d.port, name: "mem0")
        #expect(c.geometry.capacityBytes == 64 << 20)
        #expect(c.geometry.queueDepth == 16 && c.geometry.maxSegments == 16 && c.geometry.maxIOBytes == 1 << 20)
        try Self.writeReadPattern(c)
        // Inline write, read back.
        let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
        #expect(try c.run(.write, flags: .inlineData, tag: 99, offset: 1 << 20, length: 4096, inline: bytes) == .ok)
        memset(c.data.bytes.baseAddress!, 0, 4096)
        #expect(try c.run(.read, tag: 100, offset: 1 << 20, length: 4096, segments: [c.segment(0, 4096)]) == .ok)
        #expect(Array(c.data.bytes[0..<4096]) == bytes)
    }

    static func tempFile(_ tag: String) -> String { "/tmp/vireo-target-lab-\(getpid())-\(tag).img" }

    /// A file export (sparse, created by the target): data round trip, FLUSH, DISCARD, WRITE_ZEROES, GET_ID.
    @Test func fileExportCommands() throws {
        let path = Self.tempFile("cmds")
        defer { unlink(path) }
        let d = try Self.daemon([ExportConfig(name: "file0", backing: .file(path), size: 32 << 20)])
        defer { d.stop() }
        let c = try BlockTestClient(host: host, port: d.port, name: "file0")
        #expect(c.geometry.capacityBytes == 32 << 20)
        #expect(c.geometry.flags.isSuperset(of: [.flush, .discard, .writeZeroes]))
        try Self.writeReadPattern(c, bytes: 3 << 20, at: 1 << 20)
        #expect(try c.run(.flush, tag: 200) == .ok)

        // DISCARD the first MiB of the pattern, WRITE_ZEROES the next 512 KiB (plain) and 512 KiB (unmap).
        #expect(try c.run(.discard, tag: 201, offset: 1 << 20, length: 1 << 20) == .ok)
        #expect(try c.run(.writeZeroes, tag: 202, offset: 2 << 20, length: 512 << 10) == .ok)
        #expect(try c.run(.writeZeroes, flags: .unmap, tag: 203, offset: (2 << 20) + (512 << 10), length: 512 << 10) == .ok)
        memset(c.data.bytes.baseAddress!, 0xEE, 3 << 20)
        for i in 0..<3 {
            #expect(try c.run(.read, tag: 210 + UInt32(i), offset: UInt64(1 + i) << 20, length: 1 << 20,
                              segments: c.segments(i << 20, 1 << 20, count: 4)) == .ok)
        }
        #expect(Self.isZero(c.data.bytes.baseAddress!, 2 << 20), "discarded / zeroed ranges read back zeroes")
        #expect(!Self.isZero(c.data.bytes.baseAddress! + (2 << 20), 1 << 20), "the rest of the pattern survives")

        // GET_ID: the export name, NUL padded to 20 bytes, in two segments.
        memset(c.data.bytes.baseAddress!, 0xEE, 64)
        #expect(try c.run(.getID, tag: 220, length: 20, segments: [c.segment(0, 8), c.segment(32, 12)]) == .ok)
        #expect(Array(c.data.bytes[0..<8]) + Array(c.data.bytes[32..<44]) == Array("file0".utf8) + [UInt8](repeating: 0, count: 15))
        #expect(c.data.bytes[8] == 0xEE)
        let counters = d.counters
        #expect(counters.commands(opcode: BlockOpcode.read.rawValue) >= 3)
        #expect(counters.fixedBufferOperations >= 3, "file reads and writes go through the connection's fixed buffer")
    }

    @Test func outOfRangeAndMalformedCapsulesKeepTheConnection() throws {
        let d = try Self.daemon([Self.memory("mem1", size: 4 << 20)])
        defer { d.stop() }
        let c = try BlockTestClient(host: host, port: d.port, name: "mem1")
        #expect(try c.run(.read, tag: 1, offset: 4 << 20, length: 4096, segments: [c.segment(0, 4096)]) == .outOfRange)
        #expect(try c.run(.write, tag: 2, offset: (4 << 20) - 512, length: 1024, segments: [c.segment(0, 1024)]) == .outOfRange)
        #expect(try c.run(.discard, tag: 3, offset: UInt64.max - 511, length: 1024) == .outOfRange)
        // Misaligned, segments not adding up, FLUSH with a range: invalid.
        #expect(try c.run(.read, tag: 4, offset: 100, length: 512, segments: [c.segment(0, 512)]) == .invalid)
        #expect(try c.run(.read, tag: 5, offset: 0, length: 1024, segments: [c.segment(0, 512)]) == .invalid)
        #expect(try c.run(.flush, tag: 6, offset: 512, length: 512) == .invalid)
        #expect(try c.run(.write, tag: 7, length: 2 << 20, segments: [c.segment(0, 2 << 20)]) == .invalid, "above max I/O")
        // Raw capsules: unknown opcode, unknown flags, reserved bytes, size mismatch.
        var header = [UInt8](repeating: 0, count: 32)
        header[0] = 9; header[4] = 8
        #expect(try c.runRaw(header).status == .unsupported)
        header[0] = 3; header[1] = 0x80; header[4] = 9
        var r = try c.runRaw(header)
        #expect(r.tag == 9 && r.status == .invalid)
        header[1] = 0; header[24] = 1; header[4] = 10
        r = try c.runRaw(header)
        #expect(r.tag == 10 && r.status == .invalid)
        header[24] = 0; header[4] = 11
        r = try c.runRaw(header + [1, 2, 3])
        #expect(r.tag == 11 && r.status == .invalid)
        // Still usable.
        #expect(try c.run(.flush, tag: 12) == .ok)
        try Self.writeReadPattern(c, bytes: 1 << 20)
        // A capsule too short to carry a tag: the peer is broken and is dropped.
        try c.send(size: c.buildRaw([1, 2, 3]))
        var event: FabricError?
        for _ in 0..<100 where event == nil { event = try c.connection.pollEvent(timeoutMilliseconds: 100) }
        #expect(event == .disconnected)
        // The target still serves others.
        let c2 = try BlockTestClient(host: host, port: d.port, name: "mem1")
        #expect(try c2.run(.flush, tag: 1) == .ok)
    }

    @Test func rejectsCarryTheirReason() throws {
        var ro = Self.memory("ro0", size: 1 << 20)
        ro.readOnly = true
        var one = Self.memory("one", size: 1 << 20)
        one.maxQueues = 1
        let d = try Self.daemon([ro, one])
        defer { d.stop() }
        func rejection(_ body: () throws(BlockTestClient.ConnectFailure) -> BlockTestClient) -> ConnectReject? {
            do {
                _ = try body()
                return nil
            } catch {
                if case .rejected(let r) = error {
                    print("rejected as expected (\(r.reason)): \(r.message)")
                    return r
                }
                Issue.record("not a Vireo reject: \(error)")
                return nil
            }
        }
        let ror = rejection { () throws(BlockTestClient.ConnectFailure) in try BlockTestClient(host: host, port: d.port, name: "ro0") }
        #expect(ror?.reason == .readOnly && ror?.message == "export ro0 is read-only")
        // Read-only access is granted; a WRITE on it answers readOnly.
        let reader = try BlockTestClient(host: host, port: d.port, name: "ro0", wantsWrite: false)
        #expect(reader.geometry.flags.contains(.readOnly))
        #expect(try reader.run(.write, tag: 5, length: 512, segments: [reader.segment(0, 512)]) == .readOnly)
        #expect(try reader.run(.read, tag: 6, length: 512, segments: [reader.segment(0, 512)]) == .ok)

        let missing = rejection { () throws(BlockTestClient.ConnectFailure) in try BlockTestClient(host: host, port: d.port, name: "nope") }
        #expect(missing?.reason == .noSuchEndpoint && missing?.message == "no such export: nope")
        // A version 1 initiator (no handshake) is refused before anything else, with a reason it can read.
        let version = rejection { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "one", version: 1)
        }
        #expect(version?.reason == .versionMismatch)
        #expect(version?.message == "target speaks wire version 2, initiator sent 1")

        var first: BlockTestClient? = try BlockTestClient(host: host, port: d.port, name: "one")
        let limit = rejection { () throws(BlockTestClient.ConnectFailure) in try BlockTestClient(host: host, port: d.port, name: "one") }
        #expect(limit?.reason == .queueLimit)
        #expect(try first?.run(.flush) == .ok)
        first = nil  // disconnects; the slot comes back once the target has released it
        var again: BlockTestClient?
        for _ in 0..<50 where again == nil {
            again = try? BlockTestClient(host: host, port: d.port, name: "one")
            if again == nil { usleep(100_000) }
        }
        #expect(again != nil, "queue slot not released after disconnect")
    }

    @Test func twoClientsOnTwoExportsConcurrently() throws {
        let path = Self.tempFile("two")
        defer { unlink(path) }
        let d = try Self.daemon([Self.memory("ma", size: 16 << 20), ExportConfig(name: "fb", backing: .file(path), size: 16 << 20)])
        defer { d.stop() }
        let port = d.port, host = self.host
        nonisolated(unsafe) var errors: [String] = []
        var threads: [OSThread] = []
        for (i, name) in ["ma", "fb"].enumerated() {
            threads.append(try OSThread(name: "client\(i)") {
                do {
                    let c = try BlockTestClient(host: host, port: port, name: name, hostName: "host-\(i)")
                    for round in 0..<3 { try Self.writeReadPattern(c, bytes: 2 << 20, at: UInt64(round) << 22, seed: UInt64(i * 10 + round)) }
                } catch {
                    errors.append("\(name): \(error)")
                }
            })
        }
        for t in threads { t.join() }
        #expect(errors.isEmpty, "\(errors)")
    }

    /// Many commands in flight on one queue (more than the send queue can hold at once for their segments).
    @Test func pipelinedCommands() throws {
        let d = try Self.daemon([Self.memory("pipe", size: 16 << 20)])
        defer { d.stop() }
        let c = try BlockTestClient(host: host, port: d.port, name: "pipe", depth: 16, segments: 64, maxIO: 256 << 10)
        let n = Int(c.geometry.queueDepth)
        let each = 256 << 10
        vireo_fill_pattern(c.data.bytes.baseAddress!, n * each, 77)
        let sum = vireo_checksum64(c.data.bytes.baseAddress!, n * each)
        for i in 0..<n {
            let size = c.build(slot: i, .write, tag: UInt32(i), offset: UInt64(i * each), length: UInt32(each),
                               segments: c.segments(i * each, each, count: 64))
            try c.send(slot: i, size: size)
        }
        #expect(try c.responses(n).allSatisfy { $0.status == .ok })
        memset(c.data.bytes.baseAddress!, 0, n * each)
        for i in 0..<n {
            let size = c.build(slot: i, .read, tag: UInt32(100 + i), offset: UInt64(i * each), length: UInt32(each),
                               segments: c.segments(i * each, each, count: 64))
            try c.send(slot: i, size: size)
        }
        let rs = try c.responses(n)
        #expect(Set(rs.map(\.tag)) == Set((0..<n).map { UInt32(100 + $0) }))
        #expect(rs.allSatisfy { $0.status == .ok })
        #expect(vireo_checksum64(c.data.bytes.baseAddress!, n * each) == sum)
    }

    @Test func badRKeyDropsOnlyThatConnection() throws {
        let d = try Self.daemon([Self.memory("m1", size: 8 << 20), Self.memory("m2", size: 8 << 20)])
        defer { d.stop() }
        let good = try BlockTestClient(host: host, port: d.port, name: "m2")
        let bad = try BlockTestClient(host: host, port: d.port, name: "m1")
        #expect(try good.run(.flush) == .ok)
        var seg = bad.segment(0, 4096)
        seg.rkey ^= 0x5a5a00
        let size = bad.build(.write, tag: 1, length: 4096, segments: [seg])
        try bad.send(size: size)
        #expect(throws: FabricError.self) { _ = try bad.responses(1, timeoutMilliseconds: 10_000) }
        // The other connection keeps going, and the target accepts new ones.
        try Self.writeReadPattern(good, bytes: 1 << 20)
        let fresh = try BlockTestClient(host: host, port: d.port, name: "m1")
        try Self.writeReadPattern(fresh, bytes: 1 << 20)
        // A READ whose data WRITE hits a bad rkey (an unsignaled work request failing) drops that connection too.
        let bad2 = try BlockTestClient(host: host, port: d.port, name: "m1")
        var seg2 = bad2.segment(0, 8192)
        seg2.rkey ^= 0x3c3c00
        try bad2.send(size: bad2.build(.read, tag: 2, length: 8192, segments: [seg2]))
        #expect(throws: FabricError.self) { _ = try bad2.responses(1, timeoutMilliseconds: 10_000) }
        try Self.writeReadPattern(good, bytes: 1 << 20, seed: 5)
        try Self.writeReadPattern(fresh, bytes: 1 << 20, seed: 6)
        var dropped: UInt64 = 0
        for _ in 0..<50 where dropped < 2 {
            dropped = d.counters.droppedConnections
            if dropped < 2 { usleep(100_000) }
        }
        #expect(dropped == 2)
    }

    /// A block-device export (null_blk, memory backed, in the lab): O_DIRECT data round trip, FLUSH, WRITE_ZEROES.
    @Test func blockDeviceExport() throws {
        let dev = "/dev/nullb0"
        if access(dev, F_OK) != 0 {
            guard RDMAEnvironment.env("VIREO_LAB") == "1" else { return }  // outside the lab: no device to borrow
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/sbin/modprobe")
            p.arguments = ["-d", "/run/vireo-lab", "null_blk", "nr_devices=1", "memory_backed=1", "gb=1", "bs=512"]
            try p.run()
            p.waitUntilExit()
            for _ in 0..<50 where access(dev, F_OK) != 0 { usleep(100_000) }
        }
        try #require(access(dev, F_OK) == 0, "no \(dev)")
        let d = try Self.daemon([ExportConfig(name: "dev0", backing: .device(dev))])
        defer { d.stop() }
        #expect(d.exports["dev0"]!.store.isDirect)
        let c = try BlockTestClient(host: host, port: d.port, name: "dev0")
        #expect(c.geometry.capacityBytes == 1 << 30)
        try Self.writeReadPattern(c, bytes: 2 << 20, at: 512 << 20)
        #expect(try c.run(.flush, tag: 300) == .ok)
        #expect(try c.run(.writeZeroes, tag: 301, offset: 512 << 20, length: 1 << 20) == .ok)
        memset(c.data.bytes.baseAddress!, 0xEE, 1 << 20)
        #expect(try c.run(.read, tag: 302, offset: 512 << 20, length: 1 << 20, segments: c.segments(0, 1 << 20, count: 2)) == .ok)
        #expect(Self.isZero(c.data.bytes.baseAddress!, 1 << 20))
        let discard = try c.run(.discard, tag: 303, offset: 0, length: 1 << 20)
        #expect(discard == .ok || discard == .unsupported)
    }

    /// Busy-polling workers serve the same way (one worker: the lab has 2 vCPUs).
    @Test func busyPollWorker() throws {
        var logger = Logger(label: "vireo.target.test")
        logger.logLevel = .notice
        let d = try TargetDaemon(config: TargetConfig(listen: "\(host):0", workers: 1, busyPoll: true,
                                                      exports: [Self.memory("busy", size: 8 << 20)]), logger: logger)
        try d.start()
        defer { d.stop() }
        let c = try BlockTestClient(host: host, port: d.port, name: "busy")
        try Self.writeReadPattern(c, bytes: 2 << 20)
    }
}
