import Testing
import CVireoVerbs
@testable import VireoFabric
import VireoSys
import VireoTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Real RDMA over a real device (soft-RoCE in the lab). Skipped only where no
/// device exists and none is required; in the lab a missing device fails.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct FabricIntegrationTests {
    let host = RDMAEnvironment.address

    @Test func deviceIsActive() throws {
        let names = VerbsContext.deviceNames()
        try #require(!names.isEmpty, "no RDMA device although the lab should have rxe0")
        let ctx = try VerbsContext(deviceName: nil)
        let info = try ctx.query()
        #expect(info.ports.contains { $0.isActive }, "\(info)")
        #expect(info.maxSGE >= 1 && info.maxQueuePairWorkRequests >= 128)
    }

    @Test func privateDataArrivesIntactBothWays() throws {
        let listener = try Listener(address: FabricAddress(host: host, port: 0))
        let port = listener.port
        let sent = (0..<PrivateDataLimit.connect).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let reply = (0..<PrivateDataLimit.accept).map { UInt8(truncatingIfNeeded: 255 &- $0) }
        nonisolated(unsafe) var serverSaw: [UInt8] = []
        nonisolated(unsafe) var serverConn: Connection?
        let t = try OSThread(name: "accept") {
            guard let req = try? listener.nextRequest(timeoutMilliseconds: 10_000) else { return }
            serverSaw = req.privateData
            serverConn = try? req.accept(privateData: reply)
        }
        let conn = try Connection.connect(to: FabricAddress(host: host, port: port), privateData: sent)
        t.join()
        #expect(Array(serverSaw.prefix(sent.count)) == sent)
        #expect(Array(conn.peerPrivateData.prefix(reply.count)) == reply)
        #expect(serverConn != nil)
        conn.disconnect()
        // The server side observes the disconnect as a typed event.
        var seen: FabricError?
        for _ in 0..<50 where seen == nil { seen = try serverConn?.pollEvent(timeoutMilliseconds: 100) }
        #expect(seen == .disconnected)
    }

    @Test func oversizedPrivateDataIsRefusedLocally() {
        #expect(throws: FabricError.privateDataTooLong(57, max: 56)) {
            _ = try Connection.connect(to: FabricAddress(host: host, port: 1), privateData: [UInt8](repeating: 1, count: 57))
        }
    }

    @Test func rejectedConnectionCarriesTheReason() throws {
        let listener = try Listener(address: FabricAddress(host: host, port: 0))
        let port = listener.port
        let t = try OSThread(name: "reject") {
            guard let req = try? listener.nextRequest(timeoutMilliseconds: 10_000) else { return }
            try? req.reject(privateData: Array("no such export: vol9".utf8))
        }
        defer { t.join() }
        let error = #expect(throws: FabricError.self) {
            _ = try Connection.connect(to: FabricAddress(host: host, port: port), privateData: [1, 2, 3])
        }
        guard case .rejected(_, let pd)? = error else {
            Issue.record("expected .rejected, got \(String(describing: error))")
            return
        }
        #expect(String(decoding: pd.prefix { $0 != 0 }, as: UTF8.self) == "no such export: vol9")
        #expect(error?.description.contains("no such export: vol9") == true)
    }

    @Test func closedPortIsATypedError() throws {
        // Bind and close a listener to find a port nobody listens on.
        let port = try Listener(address: FabricAddress(host: host, port: 0)).port
        let error = #expect(throws: FabricError.self) {
            _ = try Connection.connect(to: FabricAddress(host: host, port: port), timeoutMilliseconds: 3000)
        }
        switch error {
        case .noListener?: break
        case .rejected(let status, _)?: Issue.record("closed port reported as rejected with status \(status)")
        default: Issue.record("expected .noListener, got \(String(describing: error))")
        }
    }

    @Test func sixtyFourMiBWriteThenReadBackVerified() throws {
        let size = 64 << 20
        let server = try FabricProbeServer(address: FabricAddress(host: host, port: 0))
        try server.start(maxConnections: 1)
        defer { server.stop() }
        let client = try FabricProbeClient(connectTo: FabricAddress(host: host, port: server.port), bufferSize: size)
        defer { client.close() }
        let src = try RegisteredBuffer(pd: client.connection.pd, count: size)
        let back = try RegisteredBuffer(pd: client.connection.pd, count: size)
        fillPattern(src.bytes, seed: 0x5eed)
        let expected = checksum64(UnsafeRawBufferPointer(src.bytes))
        let w = try client.write(from: src.region, length: size, block: 1 << 20, depth: 8)
        // The server checksums its own buffer: the bytes really landed there.
        #expect(try client.remoteChecksum() == expected)
        let r = try client.read(into: back.region, length: size, block: 1 << 20, depth: 8)
        #expect(checksum64(UnsafeRawBufferPointer(back.bytes)) == expected)
        #expect(memcmp(src.bytes.baseAddress!, back.bytes.baseAddress!, size) == 0)
        print("integration: \(w); \(r)")
    }

    @Test func tenThousandSendPingPongs() throws {
        let server = try FabricProbeServer(address: FabricAddress(host: host, port: 0))
        try server.start(maxConnections: 1)
        defer { server.stop() }
        let client = try FabricProbeClient(connectTo: FabricAddress(host: host, port: server.port), bufferSize: 4096)
        defer { client.close() }
        let stats = try client.pingPong(count: 10_000, size: 64)
        #expect(stats.count == 10_000)
        #expect(stats.min > 0 && stats.p50 >= stats.min && stats.p99 >= stats.p50)
        print("integration: \(stats)")
    }

    @Test func remoteAccessOutsideTheLentBufferFails() throws {
        // The server lends 4 KiB; an RDMA WRITE past it must fail on the wire
        // (remote access error), never corrupt the server.
        let server = try FabricProbeServer(address: FabricAddress(host: host, port: 0))
        try server.start(maxConnections: 1)
        defer { server.stop() }
        let client = try FabricProbeClient(connectTo: FabricAddress(host: host, port: server.port), bufferSize: 4096)
        defer { client.close() }
        let local = try RegisteredBuffer(pd: client.connection.pd, count: 8192)
        let batch = SendBatch(capacity: 1)
        batch.write(wrId: 9, local: local.region.segment(offset: 0, length: 8192),
                    remoteAddress: client.remoteAddress, rkey: client.remoteKey)
        try client.connection.queuePair.post(batch)
        let wc = CompletionBuffer(capacity: 4)
        let n = try client.connection.queuePair.sendCQ.wait(into: wc, timeoutMilliseconds: 5000)
        try #require(n >= 1)
        #expect(!wc[0].isSuccess)
        #expect(wc[0].status == .remoteAccessError)
    }
}
