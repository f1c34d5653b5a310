import Foundation
import Testing
import VireoFabric
@testable import VireoInitiator
import VireoPacketTarget
import VireoTestSupport
import VireoWire

/// The remote NIC's engine (`NetQueuePair`, with its device shell and fabric
/// supervisor) over the fake verbs layer, on the host: vhost-user front-ends
/// drive `RemoteNetDevice`s whose queue pairs connect through
/// `FakePacketFabric` to the ports of a real `PacketNetwork`. Normal flow,
/// credit exhaustion in both directions, and loss and reconnect run here in
/// seconds with no RDMA device; the lab's RemoteNetIntegrationTests run the same
/// engines over rxe.
@Suite(.serialized) struct RemoteNetEngineTests {
    static let macA = MACAddress(rawValue: 0x5254_0000_0001)
    static let macB = MACAddress(rawValue: 0x5254_0000_0002)

    static func waitFor(_ seconds: Double = 10, _ cond: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline { if cond() { return true }; usleep(5_000) }
        return cond()
    }

    /// Both NICs announced their buffers (a credit message each) and the fabric carried
    /// everything: a frame sent now finds credit at the switch.
    static func creditsReachedTheNetwork(_ fabric: FakePacketFabric, _ nics: [NetGuest]) -> Bool {
        waitFor { nics.allSatisfy { $0.device.counters.creditMessagesSent.load(ordering: .relaxed) >= 1 } }
            && waitFor { fabric.isIdle }
    }

    /// Two NICs on one network: a broadcast, then unicast both ways with intact
    /// frames (only num_buffers set in the header), and no receive ever missed.
    @Test func twoNicsExchangeFrames() throws {
        let fabric = try FakePacketFabric()
        defer { fabric.stop() }
        let a = try NetGuest(tag: "fa", port: 0, mac: Self.macA, fabric: fabric)
        defer { a.stop() }
        let b = try NetGuest(tag: "fb", port: 0, mac: Self.macB, fabric: fabric)
        defer { b.stop() }
        #expect(a.device.isLinkUp && b.device.isLinkUp)
        a.postReceives(16)
        b.postReceives(16)
        #expect(Self.waitFor { a.device.heldReceiveBuffers == 16 && b.device.heldReceiveBuffers == 16 })
        #expect(Self.creditsReachedTheNetwork(fabric, [a, b]))
        let hello = NetGuest.frame(dst: .broadcast, src: Self.macA, payload: NetGuest.payload(1, 100))
        a.send(hello)
        let got = try #require(b.receive())
        #expect(Array(got[12...]) == Array(hello[12...]) && got[10] == 1 && got[11] == 0)
        let back = NetGuest.frame(dst: Self.macA, src: Self.macB, payload: NetGuest.payload(2, 1400))
        b.send(back)
        #expect(a.receive().map { Array($0[12...]) } == Array(back[12...]))
        var mismatches = 0
        for i in 0..<40 {
            let ab = NetGuest.frame(dst: Self.macB, src: Self.macA, payload: NetGuest.payload(i, 46 + (i * 97) % 1455))
            a.send(ab)
            if let r = b.receive(), Array(r[12...]) == Array(ab[12...]) {} else { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(a.waitTransmitted(total: 41) == 41)
        #expect(fabric.receiverNotReady.load(ordering: .relaxed) == 0, "a SEND found no receive: credits were exceeded")
        #expect(a.device.counters.payloadBytesCopied.load(ordering: .relaxed) == 0)
    }

    /// Credit exhaustion towards a guest is lossless: B posts 4 buffers; of a burst of 12 from
    /// A, the switch sends as many as B announced and holds the rest (in A's buffers, so A is
    /// pushed back) until B gives buffers back; all 12 arrive, none is dropped, and nothing is
    /// ever sent into a receive B did not post.
    @Test func aGuestThatPostsFewBuffersGetsOnlyWhatItCanTake() throws {
        let fabric = try FakePacketFabric()
        defer { fabric.stop() }
        let a = try NetGuest(tag: "ca", port: 0, mac: Self.macA, fabric: fabric)
        defer { a.stop() }
        let b = try NetGuest(tag: "cb", port: 0, mac: Self.macB, fabric: fabric)
        defer { b.stop() }
        a.postReceives(16)
        b.postReceives(4)
        #expect(Self.waitFor { b.device.heldReceiveBuffers == 4 })
        #expect(Self.creditsReachedTheNetwork(fabric, [a, b]))
        b.send(NetGuest.frame(dst: .broadcast, src: Self.macB, payload: NetGuest.payload(0, 60)))   // the switch learns B
        #expect(a.receive() != nil)
        for i in 0..<12 { a.send(NetGuest.frame(dst: Self.macB, src: Self.macA, payload: NetGuest.payload(i, 200))) }
        #expect(a.waitTransmitted(total: 12) == 12)
        var received = 0
        while b.receive(timeoutMilliseconds: 300) != nil { received += 1 }
        #expect(received == 12, "every frame is delivered: the ones past B's credit waited for it")
        #expect(PortDrop.allCases.allSatisfy { fabric.network.totals.drops($0) == 0 })
        #expect(fabric.network.totals.framesHeld > 0)
        #expect(fabric.receiverNotReady.load(ordering: .relaxed) == 0)
        // B reposted what it read (receive() does): the flow resumes.
        usleep(50_000)
        let later = NetGuest.frame(dst: Self.macB, src: Self.macA, payload: NetGuest.payload(99, 500))
        a.send(later)
        #expect(b.receive().map { Array($0[12...]) } == Array(later[12...]))
    }

    /// Loss and reconnect: every connection is cut (posted work flushes); the link goes down,
    /// the NICs reconnect once the network takes connections again, and frames flow.
    @Test func cutConnectionsReconnectAndFramesFlowAgain() throws {
        let fabric = try FakePacketFabric()
        defer { fabric.stop() }
        let a = try NetGuest(tag: "ra", port: 0, mac: Self.macA, fabric: fabric)
        defer { a.stop() }
        let b = try NetGuest(tag: "rb", port: 0, mac: Self.macB, fabric: fabric)
        defer { b.stop() }
        a.postReceives(8)
        b.postReceives(8)
        #expect(Self.waitFor { a.device.heldReceiveBuffers == 8 && b.device.heldReceiveBuffers == 8 })
        fabric.refusing.store(true, ordering: .releasing)
        fabric.cutAll()
        #expect(Self.waitFor { !a.device.isLinkUp && !b.device.isLinkUp })
        fabric.refusing.store(false, ordering: .releasing)
        #expect(Self.waitFor(15) { a.device.isLinkUp && b.device.isLinkUp })
        #expect(Self.waitFor { fabric.network.portCount == 2 })
        // The held buffers were announced in the new connect requests; wait until both NICs
        // posted them again and the fabric carried everything.
        #expect(Self.waitFor { a.device.counters.reconnects.load(ordering: .relaxed) == 1
            && b.device.counters.reconnects.load(ordering: .relaxed) == 1 })
        #expect(Self.waitFor { fabric.isIdle && fabric.everyPortHasCredit })
        // Every posted buffer of the lost connection flushed at once and was announced to the
        // new one (8 posted, 2 kept in reserve): none waited for the 2 s flush timeout.
        #expect(Array(fabric.announced.suffix(2)) == [6, 6])
        #expect(NetGuest.broadcastAndReply(from: a, to: b, seed: 8))
        #expect(a.device.counters.reconnects.load(ordering: .relaxed) == 1)
    }
}
