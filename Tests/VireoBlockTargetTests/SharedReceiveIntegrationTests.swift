import CVireoSys
import Logging
import Testing
import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoTestSupport
import VireoWire
@testable import VireoTarget
#if canImport(Glibc)
import Glibc
#endif

/// The target's shared receive queue over RDMA (soft-RoCE in the lab): one worker's
/// connections take their commands from one pool of receive buffers (#13).
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct SharedReceiveIntegrationTests {
    let host = RDMAEnvironment.address

    static func daemon(sharedReceives: Int, maxMemoryPerHost: Int? = nil) throws -> TargetDaemon {
        var logger = Logger(label: "vireo.target.test")
        logger.logLevel = .notice
        var config = TargetConfig(listen: "\(RDMAEnvironment.address):0", workers: 1,
                                  exports: [ExportConfig(name: "pool", backing: .memory, size: 16 << 20)])
        config.sharedReceives = sharedReceives
        if let maxMemoryPerHost { config.maxMemoryPerHost = maxMemoryPerHost }
        let d = try TargetDaemon(config: config, logger: logger)
        try d.start()
        return d
    }

    /// Four connections of depth 8 on one worker whose pool has 8 buffers, each with all 8
    /// WRITEs then all 8 READs in flight at once: 32 commands for 8 buffers. A SEND that
    /// finds the pool empty is answered receiver-not-ready and retried by the initiator's
    /// RNIC; every command is answered and every byte comes back.
    @Test func connectionsBeyondThePoolAreServedThroughReceiverNotReady() throws {
        let d = try Self.daemon(sharedReceives: 8)
        defer { d.stop() }
        let port = d.port, host = self.host
        let each = 64 << 10
        nonisolated(unsafe) var errors: [String] = []
        let lock = Locked<Int>(0)
        var threads: [OSThread] = []
        for i in 0..<4 {
            threads.append(try OSThread(name: "client\(i)") {
                do {
                    let c = try BlockTestClient(host: host, port: port, name: "pool", depth: 8, segments: 4,
                                                maxIO: UInt32(each), hostName: "host-\(i)", dataBytes: 2 << 20)
                    let n = Int(c.geometry.queueDepth)
                    let base = UInt64(i) * UInt64(n * each)
                    vireo_fill_pattern(c.data.bytes.baseAddress!, n * each, UInt64(i + 1))
                    let sum = vireo_checksum64(c.data.bytes.baseAddress!, n * each)
                    for k in 0..<n {
                        let size = c.build(slot: k, .write, tag: UInt32(k), offset: base + UInt64(k * each), length: UInt32(each),
                                           segments: c.segments(k * each, each, count: 4))
                        try c.send(slot: k, size: size)
                    }
                    let written = try c.responses(n)
                    memset(c.data.bytes.baseAddress!, 0, n * each)
                    for k in 0..<n {
                        let size = c.build(slot: k, .read, tag: UInt32(100 + k), offset: base + UInt64(k * each),
                                           length: UInt32(each), segments: c.segments(k * each, each, count: 4))
                        try c.send(slot: k, size: size)
                    }
                    let read = try c.responses(n)
                    let ok = (written + read).allSatisfy { $0.status == .ok } && written.count == n && read.count == n
                    let same = vireo_checksum64(c.data.bytes.baseAddress!, n * each) == sum
                    if !ok || !same { lock.withLock { _ in errors.append("client \(i): statuses ok \(ok), data intact \(same)") } }
                } catch {
                    lock.withLock { _ in errors.append("client \(i): \(error)") }
                }
            })
        }
        for t in threads { t.join() }
        #expect(errors.isEmpty, "\(errors)")
        #expect(d.counters.droppedConnections == 0, "no connection was dropped")
        #expect(d.counters.strayReceives == 0, "every hello that came before its queue was adopted was held for it")
    }

    /// Receive memory does not grow with connections: with a host budget that holds four
    /// connections' bounce and response buffers but not their receives too, four connect on
    /// a target with a shared pool; without one the fourth is refused for memory.
    @Test func connectionsOnThePoolAreChargedNoReceiveMemory() throws {
        let export = try Export(config: ExportConfig(name: "pool", backing: .memory, size: 16 << 20), logger: Logger(label: "test"))
        let request = ConnectRequest(kind: .block, name: "pool", queueIndex: 0, queueDepth: 8, maxSegments: 4,
                                     maxIOBytes: 64 << 10, hostID: [UInt8](repeating: 1, count: 16), wantsWrite: true)
        guard case .granted(let probe) = export.grant(request) else { Issue.record("no grant"); return }
        let shared = TargetQueue.registeredBytes(probe, sharedReceives: true)
        let own = TargetQueue.registeredBytes(probe)
        #expect(own > shared)
        let budget = 4 * shared
        #expect(budget < 4 * own && budget >= 3 * own)
        for (pool, admitted) in [(64, 4), (0, 3)] {
            let d = try Self.daemon(sharedReceives: pool, maxMemoryPerHost: max(budget, 1 << 20))
            defer { d.stop() }
            var clients: [BlockTestClient] = []
            for _ in 0..<4 {
                if let c = try? BlockTestClient(host: host, port: d.port, name: "pool", depth: 8, segments: 4,
                                                maxIO: 64 << 10, hostName: "one-host", dataBytes: 1 << 20) {
                    clients.append(c)
                }
            }
            #expect(clients.count == admitted, "shared_receives \(pool): \(clients.count) of 4 admitted")
            if let c = clients.first { #expect(try c.run(.read, tag: 1, offset: 0, length: 4096, segments: [c.segment(0, 4096)]) == .ok) }
        }
    }
}
