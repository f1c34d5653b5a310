import CVireoSys
import Logging
import Testing
@testable import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoWire
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
}
