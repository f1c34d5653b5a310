import Foundation
import Testing
import VireoAuth
import VireoBlockTarget
import VireoDaemon
import VireoFabric
import VireoSys
import VireoTarget
import VireoTestSupport
import VireoWire

/// Only authorized hosts reach an export (issue #12), over rxe with the real
/// target daemon: a target with two configured hosts (one with a secret), an
/// export for one of them, one open to any host. Each refusal carries its
/// reason to the client, is logged and counted, and serves nothing.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct AuthenticationIntegrationTests {
    let host = RDMAEnvironment.address
    static let secret = SecretKey.generate(length: 32)!

    /// Target: hosts compute-1 (with `secret`) and compute-2 (name only); export `vol0` for
    /// compute-1, `open0` for any host; a two-second handshake deadline (the lab runs under TCG).
    static func daemon(log: CapturedLog, maxConnectionsPerHost: Int = 256, maxMemoryPerHost: Int = 4 << 30) throws -> TargetDaemon {
        let keyFile = "/tmp/vireo-auth-\(getpid())-compute-1.key"
        unlink(keyFile)
        try secret.write(path: keyFile)
        var vol0 = ExportConfig(name: "vol0", backing: .memory, size: 1 << 20)
        vol0.access = EndpointAccessConfig(allowedHosts: ["compute-1"])
        var open0 = ExportConfig(name: "open0", backing: .memory, size: 1 << 20)
        open0.access = EndpointAccessConfig(allowAnyHost: true)
        var config = TargetConfig(listen: "\(RDMAEnvironment.address):0", workers: 1, exports: [vol0, open0])
        config.name = "storage-1"
        config.hosts = [HostConfig(name: "compute-1", keyFiles: [keyFile]), HostConfig(name: "compute-2")]
        config.handshakeTimeoutSeconds = 2
        config.maxConnectionsPerHost = maxConnectionsPerHost
        config.maxMemoryPerHost = maxMemoryPerHost
        let d = try TargetDaemon(config: config, logger: log.logger())
        try d.start()
        return d
    }

    static func waitFor(seconds: Int = 20, _ what: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        while Date() < deadline {
            if what() { return true }
            usleep(20_000)
        }
        return what()
    }

    /// What a connect attempt came to: served, or refused with this reason.
    static func refusal(_ make: () throws(BlockTestClient.ConnectFailure) -> BlockTestClient) -> AuthRejectReason? {
        do throws(BlockTestClient.ConnectFailure) {
            let c = try make()
            let served = (try? c.run(.flush)) == .ok
            #expect(served)
            return nil
        } catch {
            guard case .handshake(.rejected(let r)) = error else {
                Issue.record("not a handshake refusal: \(error)")
                return nil
            }
            return r
        }
    }

    @Test func onlyAllowedAuthenticatedHostsAreServed() throws {
        let log = CapturedLog()
        let d = try Self.daemon(log: log)
        defer { d.stop() }
        let key = Self.secret.bytes
        // compute-1 with its secret: served on both exports.
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "vol0", hostName: "compute-1", hostKey: key) } == nil)
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-1", hostKey: key) } == nil)
        // A wrong secret, no proof, an unknown host, a known host not on the list.
        let wrong = [UInt8](repeating: 0x5a, count: 32)
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "vol0", hostName: "compute-1", hostKey: wrong) } == .authenticationFailed)
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-1") } == .authenticationFailed)
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "vol0", hostName: "intruder") } == .unknownHost)
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "vol0", hostName: "compute-2") } == .hostNotAllowed)
        // An unknown host on the export open to any host is served.
        #expect(Self.refusal { () throws(BlockTestClient.ConnectFailure) in
            try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "intruder") } == nil)
        #expect(Self.waitFor { d.counters.refusedHandshakes(.authenticationFailed) == 2 })
        let c = d.counters
        #expect(c.refusedHandshakes(.unknownHost) == 1 && c.refusedHandshakes(.hostNotAllowed) == 1)
        #expect(c.authenticatedConnections == 3)
        // (Each refused connection is then dropped: as authenticationRefused once its refusal is
        // written, or as an orderly disconnect when the client hung up first; not counted here.)
        #expect(c.commands(opcode: BlockOpcode.flush.rawValue) == 3, "only the admitted connections were served")
        #expect(!log.lines(containing: "refused", "host 'compute-2' is not allowed on export vol0").isEmpty)
    }

    /// A connection that never says hello is dropped at the deadline; one that sends a command
    /// first is dropped at once; neither is served.
    @Test func silentAndImpatientPeersAreDropped() throws {
        let log = CapturedLog()
        let d = try Self.daemon(log: log)
        defer { d.stop() }
        let silent = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2", authenticate: false)
        #expect(Self.waitFor { d.counters.drops(.handshakeTimeout) == 1 }, "dropped after handshake_timeout")
        #expect(Self.waitFor { (try? silent.connection.pollEvent(timeoutMilliseconds: 100)) == .disconnected })

        let impatient = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2", authenticate: false)
        impatient.data.bytes.initializeMemory(as: UInt8.self, repeating: 0xEE)
        let n = impatient.build(.read, tag: 1, length: 4096, segments: [impatient.segment(0, 4096)])
        try impatient.send(size: n)
        #expect(Self.waitFor { d.counters.drops(.handshakeFailed) == 1 })
        #expect(impatient.data.bytes.prefix(4096).allSatisfy { $0 == 0xEE }, "the READ wrote nothing into its memory")
        #expect(d.counters.commands(opcode: BlockOpcode.read.rawValue) == 0)
        #expect(!log.lines(containing: "handshake from", "handshake hello of 48 bytes, expected 152").isEmpty)
    }

    /// One host cannot hold more than `max_connections_per_host` connections; others still can.
    @Test func perHostConnectionLimit() throws {
        let log = CapturedLog()
        let d = try Self.daemon(log: log, maxConnectionsPerHost: 2)
        defer { d.stop() }
        let a = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2")
        let b = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2", queueIndex: 1)
        do {
            _ = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2", queueIndex: 2)
            Issue.record("a third connection from one host was admitted")
        } catch {
            guard case .rejected(let r) = error else { Issue.record("\(error)"); return }
            #expect(r.reason == .queueLimit && r.message == "this host already holds its maximum of 2 connections on the target")
        }
        let other = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "intruder")
        #expect(try other.run(.flush) == .ok)
        withExtendedLifetime((a, b)) {}
    }

    /// One host's connections cannot pin more than `max_memory_per_host` of target buffers.
    @Test func perHostMemoryLimit() throws {
        let log = CapturedLog()
        // A queue of depth 16 with 1 MiB commands holds a little over 16 MiB.
        let d = try Self.daemon(log: log, maxMemoryPerHost: 20 << 20)
        defer { d.stop() }
        let a = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2")
        do {
            _ = try BlockTestClient(host: host, port: d.port, name: "open0", hostName: "compute-2", queueIndex: 1)
            Issue.record("a second 16 MiB queue was admitted under a 20 MiB limit")
        } catch {
            guard case .rejected(let r) = error else { Issue.record("\(error)"); return }
            #expect(r.reason == .queueLimit && r.message.contains("max_memory_per_host"))
        }
        #expect(try a.run(.flush) == .ok)
    }

    /// A hello captured from one connection and sent on another fails: the nonces differ.
    @Test func aReplayedHandshakeIsRefused() throws {
        let log = CapturedLog()
        let d = try Self.daemon(log: log)
        defer { d.stop() }
        let victim = try BlockTestClient(host: host, port: d.port, name: "vol0", hostName: "compute-1", authenticate: false)
        let credentials = InitiatorCredentials(hostName: "compute-1", hostKey: HandshakeKey(secret: Self.secret.bytes))
        let hello = try InitiatorHandshake(credentials: credentials, request: try victim.request.encoded(),
                                           accept: victim.connection.peerPrivateData)
            .hello(mailboxAddress: victim.data.region.remoteAddress(offset: 0), mailboxKey: victim.data.region.rkey)
        let attacker = try BlockTestClient(host: host, port: d.port, name: "vol0", hostName: "compute-1", authenticate: false)
        try attacker.send(size: attacker.buildRaw(hello))
        #expect(Self.waitFor { d.counters.refusedHandshakes(.authenticationFailed) == 1 })
        #expect(d.counters.authenticatedConnections == 0)
        // The victim's own connection takes the same hello: the proof is right, for that connection only.
        try victim.send(size: victim.buildRaw(hello))
        #expect(Self.waitFor { d.counters.authenticatedConnections == 1 })
        #expect(AuthResult.read(Array(victim.data.bytes.prefix(AuthResult.size))) == .result(AuthResult(rejection: nil, proof: nil)))
    }
}
