import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// Front-ends that reconnect without the full handshake.
@Suite(.serialized) struct ReconnectHandshakeTests {
    /// QEMU 7.2's vhost-user-blk, when its back-end restarts while the VM
    /// waits for an incoming migration, reconnects without SET_OWNER,
    /// GET_FEATURES or the protocol-feature handshake: its first messages are
    /// SET_FEATURES (with PROTOCOL_FEATURES) and GET_STATUS (seen in
    /// `migration-guest.sh --full --restart`). The back-end carries on with
    /// the protocol features it offers, and the disk works.
    @Test func setFeaturesWithoutProtocolHandshake() throws {
        let rig = try BlockRig(tag: "no-handshake", queues: 1)
        var fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        let features = fe.features, negotiated = fe.protocolFeatures
        #expect(negotiated.contains(.status) && negotiated.contains(.replyAck))
        try rig.reconnect()
        fe = rig.frontend
        try fe.resumeWithoutHandshake(features: features, protocolFeatures: negotiated)   // acked (REPLY_ACK)
        let status = try fe.request(.getStatus, expectReply: true)
        #expect(status.count == 8)
        try fe.setMemTable(rig.memory)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        let f = rig.memory.blockRequest(type: VirtioBlk.RequestType.flush.rawValue, sector: 0, dataLength: 0)
        q.add(f, write: true)
        fe.kick(0)
        #expect(fe.waitForUsed(0, count: 1).count == 1)
        #expect(rig.memory.read(f.status, count: 1) == [VirtioBlk.Status.ok.rawValue])
    }

    /// Without PROTOCOL_FEATURES in SET_FEATURES nothing is assumed: a
    /// protocol-feature request is still refused (the connection closes).
    @Test func noProtocolFeaturesNoAssumption() throws {
        let rig = try BlockRig(tag: "no-handshake-plain", queues: 1)
        let fe = rig.frontend
        try fe.resumeWithoutHandshake(features: blockFeatures & ~VhostFeature.protocolFeatures, protocolFeatures: [])
        #expect(throws: (any Error).self) { try fe.request(.getStatus, expectReply: true) }
        #expect(fe.waitForClose())
    }
}
