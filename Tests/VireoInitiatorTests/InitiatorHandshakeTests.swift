import Logging
import Testing
import VireoAuth
import VireoFabric
@testable import VireoInitiator
import VireoWire

/// The initiator's side of the handshake (`EndpointConnector.authenticate` over
/// `HandshakeExchange`) against real target queues on the fake fabric: a disk
/// starts only when the target admits its host, and the error says why not.
@Suite(.serialized) struct InitiatorHandshakeTests {
    static let hostSecret = [UInt8](repeating: 0x31, count: 32)
    static let targetSecret = [UInt8](repeating: 0x32, count: 64)
    static let cfg = DiskConfig(socket: "/tmp/unused.sock", target: FabricAddress(host: "10.99.0.1", port: 4420),
                                export: "vol0", queues: 2, queueDepth: 16)

    static func start(credentials: InitiatorCredentials, policy: AccessPolicy, access: AccessPolicy.Endpoint)
        throws -> (FakeBlockFabric, Result<RemoteBlockDevice, InitiatorError>) {
        let fabric = try FakeBlockFabric(config: cfg, credentials: credentials, policy: policy, access: access)
        var logger = Logger(label: "test.handshake")
        logger.logLevel = .critical
        do throws(InitiatorError) {
            return (fabric, .success(try RemoteBlockDevice(config: cfg, connector: fabric, logger: logger)))
        } catch { return (fabric, .failure(error)) }
    }

    static let policy = AccessPolicy(targetName: "storage-1", targetKey: HandshakeKey(secret: targetSecret),
                                     hosts: ["compute-1": [HandshakeKey(secret: hostSecret)!], "compute-2": []])
    static let onlyCompute1 = AccessPolicy.Endpoint(allowAnyHost: false, allowedHosts: ["compute-1"])

    @Test func anAllowedHostThatRequiresTheTargetsProofConnectsEveryQueue() throws {
        let c = InitiatorCredentials(hostName: "compute-1", hostKey: HandshakeKey(secret: Self.hostSecret),
                                     targetKeys: [HandshakeKey(secret: Self.targetSecret)!], targetName: "storage-1")
        let (fabric, r) = try Self.start(credentials: c, policy: Self.policy, access: Self.onlyCompute1)
        defer { fabric.stop() }
        let device = try r.get()
        defer { device.stop() }
        #expect(fabric.authenticatedHosts == ["compute-1", "compute-1"])
    }

    @Test func refusalsStopTheDiskWithTheReason() throws {
        let cases: [(InitiatorCredentials, String)] = [
            (InitiatorCredentials(hostName: "compute-2"), "host compute-2 is not allowed on export vol0"),
            (InitiatorCredentials(hostName: "compute-9"),
             "host compute-9 is not known to the target (not in its [hosts]) and export vol0 does not allow any host"),
            (InitiatorCredentials(hostName: "compute-1", hostKey: HandshakeKey(secret: [UInt8](repeating: 9, count: 32))),
             "host compute-1 failed authentication for export vol0: the target's secret for it differs from this host's key"),
            (InitiatorCredentials(hostName: "compute-1", hostKey: HandshakeKey(secret: Self.hostSecret),
                                  targetKeys: [HandshakeKey(secret: [UInt8](repeating: 7, count: 32))!]),
             "target 'storage-1' did not prove it holds the target secret (wrong or missing proof)"),
        ]
        for (credentials, message) in cases {
            let (fabric, r) = try Self.start(credentials: credentials, policy: Self.policy, access: Self.onlyCompute1)
            defer { fabric.stop() }
            guard case .failure(.handshake(_, 0, let m)) = r else {
                Issue.record("\(credentials.hostName): \(r)")
                if case .success(let d) = r { d.stop() }
                continue
            }
            #expect(m == message)
            // The target admitted nobody, except the host that then refused the unproven target.
            #expect(fabric.authenticatedHosts.allSatisfy { $0 == nil } || !credentials.targetKeys.isEmpty)
        }
    }
}
