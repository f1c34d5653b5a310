import Testing
import VireoAuth
import VireoBlockTarget
import VireoFabric
import VireoTestSupport
import VireoWire

/// The handshake in front of the block target's engine (`TargetQueue` with a
/// `TargetHandshake`), over the fake verbs layer: the test plays the initiator,
/// with its mailbox in the rig's registered "guest" memory.
@Suite struct TargetHandshakeEngineTests {
    typealias Rig = TargetQueueEngineTests.Rig
    static let secret = [UInt8](repeating: 0x42, count: 32)
    static let mailbox = 0xF_0000

    /// The initiator's hello for this rig's connection, naming the mailbox in guest memory.
    static func hello(_ rig: Rig, host: String = "host-a", key: [UInt8]? = secret) throws -> [UInt8] {
        var c = InitiatorCredentials(hostName: host)
        c.hostKey = key.flatMap { HandshakeKey(secret: $0) }
        let h = try InitiatorHandshake(credentials: c, request: try rig.request.encoded(), accept: rig.accept)
        return try h.hello(mailboxAddress: rig.guest.region.remoteAddress(offset: mailbox), mailboxKey: rig.guest.region.rkey)
    }

    static func result(_ rig: Rig) -> AuthResult.Reading { AuthResult.read(rig.read(mailbox, AuthResult.size)) }

    static let policy = AccessPolicy(targetName: "target-1", targetKey: nil, hosts: ["host-a": [HandshakeKey(secret: secret)!]])
    static let onlyA = AccessPolicy.Endpoint(allowAnyHost: false, allowedHosts: ["host-a"])

    /// A READ before the hello would have written guest memory: it is not served, the connection drops.
    @Test func aCommandBeforeTheHelloIsNotServed() throws {
        let rig = try Rig(policy: Self.policy, access: Self.onlyA)
        rig.fill(0, [UInt8](repeating: 0xEE, count: 4096))
        rig.send(rig.capsule(.read, tag: 1, offset: 0, length: 4096, segments: [rig.segment(0, 4096)]))
        #expect(rig.link.queue.sends.isEmpty, "nothing posted for an unauthenticated peer")
        #expect(rig.queue.dropFault == .handshakeFailed)
        rig.run()
        #expect(rig.responses.isEmpty)
        #expect(rig.read(0, 4096) == [UInt8](repeating: 0xEE, count: 4096), "guest memory untouched")
    }

    @Test func anAcceptedHelloIsAnsweredInTheMailboxThenCommandsAreServed() throws {
        let rig = try Rig(policy: Self.policy, access: Self.onlyA)
        rig.send(try Self.hello(rig))
        #expect(rig.link.queue.sends.map(\.operation) == [.write], "the result is one RDMA WRITE into the mailbox")
        rig.run()
        #expect(Self.result(rig) == .result(AuthResult(rejection: nil, proof: nil)))
        #expect(rig.queue.host == "host-a" && rig.queue.dropReason == nil)
        #expect(rig.counters.authenticatedConnections == 1)
        rig.send(rig.capsule(.flush, tag: 9))
        rig.run()
        #expect(rig.responses.count == 1 && rig.responses[0].status == .ok)
        #expect(rig.link.queue.receives.count == 4, "the hello's receive was reposted")
        #expect(rig.link.queue.sendQueueUsed == 0)
    }

    @Test func aRefusedHostLearnsWhyAndIsDropped() throws {
        for (host, key, reason) in [("host-a", [UInt8](repeating: 1, count: 32), AuthRejectReason.authenticationFailed),
                                    ("host-z", Self.secret, .unknownHost)] {
            let rig = try Rig(policy: Self.policy, access: Self.onlyA, hostName: host)
            rig.send(try Self.hello(rig, host: host, key: key))
            rig.run()
            #expect(Self.result(rig) == .result(AuthResult(rejection: reason, proof: nil)))
            #expect(rig.queue.dropFault == .authenticationRefused)
            #expect(rig.counters.refusedHandshakes(reason) == 1)
            rig.send(rig.capsule(.flush, tag: 9))
            rig.run()
            #expect(rig.responses.isEmpty, "nothing served after a refusal")
        }
    }

    @Test func noHelloByTheDeadlineDropsTheConnection() throws {
        let rig = try Rig(policy: Self.policy, access: Self.onlyA, handshakeDeadline: 5_000)
        rig.queue.checkLiveness(now: 4_999)
        #expect(rig.queue.dropReason == nil)
        rig.queue.checkLiveness(now: 5_000)
        #expect(rig.queue.dropFault == .handshakeTimeout)
    }

    /// A hello from another connection (another target nonce) fails; a second hello is a broken peer.
    @Test func aReplayedOrRepeatedHelloIsRefused() throws {
        let first = try Rig(policy: Self.policy, access: Self.onlyA)
        let captured = try Self.hello(first)
        let second = try Rig(policy: Self.policy, access: Self.onlyA)
        second.send(captured)
        second.run()
        // (The refusal goes to the captured mailbox, which is not this peer's: the write fails too.)
        #expect(second.counters.refusedHandshakes(.authenticationFailed) == 1)
        #expect(second.queue.host == nil && second.queue.dropReason != nil)
        first.send(captured)
        first.run()
        #expect(first.queue.host == "host-a")
        first.send(captured)
        #expect(first.responses.isEmpty)
    }
}
