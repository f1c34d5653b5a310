import Logging
import Testing
@testable import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoWire
import VireoTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Defect 8 (issue 10): a memory export's DISCARD / WRITE_ZEROES (up to 1 GiB
/// each) must not hold the worker that every other connection shares.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct WorkerStallTests {
    let host = RDMAEnvironment.address

    /// One worker serves both connections; one of them asks for 1 GiB of zeroing (8 × 128 MiB, over memory
    /// the test filled first), the other does a 4 KiB READ meanwhile: that READ must be answered while the
    /// zeroing is still under way, and the zeroing must still be complete and correct.
    @Test func largeZeroingDoesNotStallAnotherConnection() throws {
        let size: UInt64 = 128 << 20
        let d = try TargetIntegrationTests.daemon(
            [TargetIntegrationTests.memory("zero", size: size), TargetIntegrationTests.memory("other", size: 8 << 20)],
            workers: 1)
        defer { d.stop() }
        let mem = try #require(d.exports["zero"]?.store.memory)
        memset(mem, 0xAB, Int(size))  // populated and nonzero: zeroing costs real stores
        let zeroer = try BlockTestClient(host: host, port: d.port, name: "zero", hostName: "host-1")
        let reader = try BlockTestClient(host: host, port: d.port, name: "other", hostName: "host-2")
        #expect(try reader.run(.flush, tag: 1) == .ok)
        let commands = 8
        for i in 0..<commands {
            let op: BlockOpcode = i % 2 == 0 ? .writeZeroes : .discard
            try zeroer.send(slot: i, size: zeroer.build(slot: i, op, tag: UInt32(100 + i), offset: 0, length: UInt32(size)))
        }
        usleep(20_000)  // the zeroing commands have arrived and one is running
        let start = monotonicNanoseconds()
        #expect(try reader.run(.read, tag: 2, offset: 0, length: 4096, segments: [reader.segment(0, 4096)]) == .ok)
        let readMs = (monotonicNanoseconds() - start) / 1_000_000
        let doneBeforeRead = try zeroer.pollResponses().count
        print("4 KiB READ answered in \(readMs) ms; \(doneBeforeRead) of \(commands) zeroing commands done by then")
        #expect(doneBeforeRead < commands, "the READ waited behind all 1 GiB of zeroing")
        let rest = try zeroer.responses(commands - doneBeforeRead, timeoutMilliseconds: 300_000)
        #expect(rest.allSatisfy { $0.status == .ok })
        #expect(TargetIntegrationTests.isZero(mem, Int(size)), "the export reads back zeroes")
        #expect(d.counters.chunkedCommands == UInt64(commands), "counted as deferred to chunks")
        #expect(d.statsSnapshot().render().contains("vireo_target_commands_chunked_total 8"))
        try TargetIntegrationTests.writeReadPattern(reader, bytes: 1 << 20)
    }
}
