import Logging
import Testing
import VireoFabric
import VireoPacketTarget
import VireoSys
import VireoTestSupport
import VireoWire

/// The packet network's engine (`PacketNetwork` with its `PacketPort`s) driven
/// through the fake verbs layer, on the host: the test plays every initiator,
/// delivers their frames into the ports' posted receives, runs the SENDs the
/// network posts and feeds the completions back, on the test's thread (the
/// network's worker is never started).
@Suite struct PacketNetworkEngineTests {
    static let a = MACAddress("52:54:00:00:00:0a")!, b = MACAddress("52:54:00:00:00:0b")!
    static let c = MACAddress("52:54:00:00:00:0c")!

    final class Rig {
        let network: PacketNetwork
        var ports: [PacketPort] = []
        var links: [FakeLink] = []
        /// Peers the network retired (called on the test's thread: the worker never runs).
        final class Retired: @unchecked Sendable { var peers: [String] = [] }
        let retired = Retired()
        var retiredPeers: [String] { retired.peers }
        let now: UInt64 = 1_000_000_000
        /// One registrar for every port, as the target's process-wide PD of one device.
        let registrar = FakeRegistrar()

        init(mtu: Int = 1500) throws {
            let retired = self.retired
            network = try PacketNetwork(config: NetworkConfig(name: "lan0", mtu: mtu), logger: Logger(label: "test"),
                                        clock: { 1_000_000_000 }, retire: { p in retired.peers.append(p.peer) })
        }

        /// Connects a port whose initiator announced `credits` receive buffers.
        @discardableResult
        func connect(credits: UInt16, sendSlots: Int = 16, receiveBuffers: UInt16 = 32,
                     ownRegistrar: Bool = false) throws -> Int {
            let request = ConnectRequest(kind: .packet, name: "lan0", queueIndex: 0, queueDepth: credits, maxSegments: 1,
                                         maxIOBytes: UInt32(network.maxFrame), hostID: Array(repeating: 1, count: 16),
                                         wantsWrite: true)
            let geometry = PacketGeometry(mtu: UInt32(network.config.mtu), receiveBuffers: receiveBuffers)
            let link = try FakeLink(sendDepth: sendSlots + 8, receiveDepth: Int(receiveBuffers) + PacketPort.creditMargin,
                                    registrar: ownRegistrar ? FakeRegistrar(firstKey: 0x40_0000) : registrar,
                                    peerAddress: "10.0.0.\(ports.count + 1):5000")
            let port = try PacketPort(connection: link, request: request, geometry: geometry, sendSlots: sendSlots)
            network.take(adopted: [port], dropped: [])
            ports.append(port)
            links.append(link)
            return ports.count - 1
        }

        /// Initiator `i` SENDs `frame` (piggybacking `credits`); the network handles it and flushes.
        func send(from i: Int, _ frame: [UInt8], credits: UInt16 = 0) {
            guard let c = links[i].queue.deliver(frame, immediate: PacketImmediate.frame(credits: credits)) else {
                Issue.record("port \(i) has no receive posted")
                return
            }
            network.completed(c, port: ports[i], now: now)
            network.flush(now: now, force: false)
        }

        /// Port 1's initiator sends a frame to a: the switch learns b on port 1.
        func learnB() {
            send(from: 1, Rig.frame(PacketNetworkEngineTests.a, PacketNetworkEngineTests.b))
            _ = drain(0)
        }

        /// Initiator `i` returns `credits` receive buffers with a credit-only message.
        func grant(from i: Int, _ credits: UInt16) {
            guard let c = links[i].queue.deliver([], immediate: PacketImmediate.credit(credits)) else { return }
            network.completed(c, port: ports[i], now: now)
            network.flush(now: now, force: false)
        }

        /// Runs what the network posted to port `i`; returns the frames it carried and the credits
        /// its immediates returned; feeds completions back.
        func drain(_ i: Int) -> (frames: [[UInt8]], credits: Int) {
            var frames: [[UInt8]] = []
            var credits = 0
            links[i].queue.runAllSends { o in
                if let imm = o.request.immediate.flatMap(PacketImmediate.init(rawValue:)) {
                    credits += Int(imm.credits)
                    if imm.kind == .frame { frames.append(o.payload) }
                }
                if let c = o.completion { network.completed(c, port: ports[i], now: now) }
            }
            network.flush(now: now, force: false)
            return (frames, credits)
        }

        static func frame(_ dst: MACAddress, _ src: MACAddress, _ payload: [UInt8] = Array(repeating: 0x5a, count: 64)) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 12 + 14 + payload.count)
            bytes.withUnsafeMutableBytes { raw in
                dst.store(to: raw.baseAddress!, offset: 12)
                src.store(to: raw.baseAddress!, offset: 18)
                raw.storeBytes(of: UInt16(0x88b5).bigEndian, toByteOffset: 24, as: UInt16.self)
            }
            bytes.replaceSubrange(26..., with: payload)
            return bytes
        }
    }

    @Test func adoptedPortPostsEveryReceiveInOneCall() throws {
        let rig = try Rig()
        try rig.connect(credits: 8, receiveBuffers: 32)
        #expect(rig.links[0].queue.receives.count == 32 + PacketPort.creditMargin)
        #expect(rig.links[0].queue.receivePostCalls == 1)
    }

    /// Normal flow: an unknown destination floods, the reply is switched to the learned port
    /// alone, and the bytes arrive intact (header zeroed, nothing else touched).
    @Test func floodThenLearnedUnicast() throws {
        let rig = try Rig()
        for _ in 0..<3 { try rig.connect(credits: 8) }
        let payload = (0..<100).map { UInt8($0) }
        rig.send(from: 0, Rig.frame(Self.b, Self.a, payload))
        let toB = rig.drain(1), toC = rig.drain(2)
        #expect(toB.frames.count == 1 && toC.frames.count == 1, "unknown destination: flooded to both others")
        #expect(toB.frames.first == Rig.frame(Self.b, Self.a, payload))
        #expect(rig.drain(0).frames.isEmpty, "never back to the ingress port")
        rig.send(from: 1, Rig.frame(Self.a, Self.b))
        #expect(rig.drain(0).frames.count == 1)
        #expect(rig.drain(2).frames.isEmpty, "a learned destination is not flooded")
        #expect(rig.ports[0].counters.txFrames == 1 && rig.ports[1].counters.txFrames == 1)
    }

    /// Credit exhaustion is lossless (#13): a port whose initiator announced 2 buffers gets 2
    /// frames; the third waits in its ingress receive buffer, which is not reposted (its sender
    /// gets that credit back only when the frame leaves), and goes out, in order, when the
    /// port's initiator returns a credit. Nothing is dropped, nothing is posted beyond the
    /// peer's buffers.
    @Test func creditExhaustionHoldsFramesUntilCreditsReturn() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 2)
        rig.learnB()
        let receivesBefore = rig.links[0].queue.receives.count
        let frames = (0..<3).map { Rig.frame(Self.b, Self.a, Array(repeating: UInt8($0), count: 64)) }
        for f in frames { rig.send(from: 0, f) }
        #expect(rig.drain(1).frames == Array(frames.prefix(2)))
        #expect(rig.ports[1].counters.framesHeld == 1)
        #expect(PortDrop.allCases.allSatisfy { rig.network.totals.drops($0) == 0 }, "nothing dropped")
        #expect(rig.links[0].queue.receives.count == receivesBefore - 1, "the held frame keeps its ingress buffer")
        rig.grant(from: 1, 1)
        #expect(rig.drain(1).frames == [frames[2]], "the held frame leaves once a credit returns")
        #expect(rig.links[0].queue.receives.count == receivesBefore, "and its buffer goes back to the sender")
        #expect(rig.links[1].queue.mostSendQueueUsed <= rig.links[1].queue.sendDepth)
    }

    /// A frame that waits longer than the hold timeout is dropped and counted (`stalled`: the
    /// destination's guest stopped taking frames), and its buffer goes back to the sender.
    @Test func aFrameHeldPastTheTimeoutIsDroppedAsStalled() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 0)
        rig.learnB()
        let receivesBefore = rig.links[0].queue.receives.count
        rig.send(from: 0, Rig.frame(Self.b, Self.a))
        #expect(rig.links[0].queue.receives.count == receivesBefore - 1)
        rig.network.flush(now: rig.now + rig.network.holdTimeoutNanoseconds / 2, force: false)
        #expect(rig.ports[1].counters.drops(.stalled) == 0, "not yet")
        rig.network.flush(now: rig.now + rig.network.holdTimeoutNanoseconds + 1, force: false)
        #expect(rig.ports[1].counters.drops(.stalled) == 1)
        #expect(rig.links[0].queue.receives.count == receivesBefore)
        #expect(rig.drain(1).frames.isEmpty)
    }

    /// A port that leaves with frames held for it drops them (`portGone`) and returns their buffers.
    @Test func aPortLeavingWithHeldFramesReturnsTheirBuffers() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 0)
        rig.learnB()
        let receivesBefore = rig.links[0].queue.receives.count
        for _ in 0..<3 { rig.send(from: 0, Rig.frame(Self.b, Self.a)) }
        #expect(rig.links[0].queue.receives.count == receivesBefore - 3)
        rig.network.take(adopted: [], dropped: [rig.ports[1]])
        rig.network.flush(now: rig.now, force: false)
        #expect(rig.ports[1].counters.drops(.portGone) == 3)
        #expect(rig.links[0].queue.receives.count == receivesBefore)
    }

    /// The receive buffers a frame arrived in go back to the sender as credits: piggybacked
    /// on frames to it, or in a credit-only message once enough are pending.
    @Test func consumedBuffersReturnAsCredits() throws {
        let rig = try Rig()
        try rig.connect(credits: 64, receiveBuffers: 8)
        try rig.connect(credits: 64, receiveBuffers: 8)
        for _ in 0..<4 { rig.send(from: 0, Rig.frame(Self.b, Self.a)) }
        _ = rig.drain(1)
        let back = rig.drain(0)
        #expect(back.frames.isEmpty)
        #expect(back.credits == 4, "4 buffers reposted: announced in one credit message (half of 8 were pending)")
        #expect(rig.ports[0].counters.creditMessages == 1)
        #expect(rig.links[0].queue.receives.count == 8 + PacketPort.creditMargin, "every buffer reposted")
    }

    /// Port to port, a frame is SENT straight from its ingress receive buffer (#13: no copy on
    /// the target), and that buffer goes back to its sender only once the SEND completed.
    @Test func framesAreForwardedFromTheIngressBufferWithoutACopy() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 8)
        rig.learnB()
        let before = rig.links[0].queue.receives.count
        let f = Rig.frame(Self.b, Self.a, (0..<200).map { UInt8(truncatingIfNeeded: $0) })
        rig.send(from: 0, f)
        #expect(rig.links[0].queue.receives.count == before - 1, "still read by the forwarding SEND")
        #expect(rig.drain(1).frames == [f])
        #expect(rig.links[0].queue.receives.count == before, "reposted when the SEND completed")
        #expect(rig.network.totals.payloadBytesCopied == 0)
    }

    /// A flood is SENT from one buffer to every other port; the buffer returns after the last SEND.
    @Test func aFloodReadsOneBufferUntilItsLastSend() throws {
        let rig = try Rig()
        for _ in 0..<3 { try rig.connect(credits: 8) }
        let before = rig.links[0].queue.receives.count
        let f = Rig.frame(.broadcast, Self.a)
        rig.send(from: 0, f)
        #expect(rig.drain(1).frames == [f])
        #expect(rig.links[0].queue.receives.count == before - 1, "one SEND still reads it")
        #expect(rig.drain(2).frames == [f])
        #expect(rig.links[0].queue.receives.count == before)
        #expect(rig.network.totals.payloadBytesCopied == 0)
    }

    /// A port that leaves while its frame is being forwarded keeps its buffers (the other
    /// port's SEND reads them) until that SEND completes; then it is retired.
    @Test func aPortLeavingMidForwardIsRetiredWhenTheForwardCompletes() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 8)
        rig.learnB()
        rig.send(from: 0, Rig.frame(Self.b, Self.a))
        rig.network.take(adopted: [], dropped: [rig.ports[0]])
        #expect(rig.retiredPeers.isEmpty, "port 0's buffer is still being read")
        #expect(rig.drain(1).frames.count == 1)
        #expect(rig.retiredPeers == [rig.ports[0].peer])
    }

    /// Ports on different RDMA devices (PDs) cannot share an lkey: the frame is copied, and counted.
    @Test func acrossProtectionDomainsFramesAreCopiedAndCounted() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 8, ownRegistrar: true)
        rig.learnB()
        let f = Rig.frame(Self.b, Self.a)
        rig.send(from: 0, f)
        #expect(rig.drain(1).frames == [f])
        #expect(rig.network.totals.payloadBytesCopied == UInt64(2 * f.count), "both directions crossed PDs")
    }

    /// A flushed completion (the QP went to error) retires that port alone.
    @Test func flushedPortIsRetiredAlone() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 8)
        for c in rig.links[0].queue.flushAll().prefix(1) { rig.network.completed(c, port: rig.ports[0], now: rig.now) }
        #expect(rig.ports[0].dropReason == "disconnected")
        #expect(rig.retiredPeers == [rig.ports[0].peer])
        #expect(rig.network.portCount == 1)
        rig.send(from: 1, Rig.frame(Self.a, Self.b))
        #expect(rig.drain(0).frames.isEmpty, "a retired port gets nothing")
    }

    /// A SEND without a packet immediate is a protocol error: that port is dropped, never the network.
    @Test func sendWithoutImmediateDropsThePort() throws {
        let rig = try Rig()
        try rig.connect(credits: 8)
        try rig.connect(credits: 8)
        let c = try #require(rig.links[0].queue.deliver(Rig.frame(Self.b, Self.a)))
        rig.network.completed(c, port: rig.ports[0], now: rig.now)
        #expect(rig.ports[0].dropReason?.contains("protocol error") == true)
        #expect(rig.ports[1].dropReason == nil)
        #expect(rig.network.portCount == 1)
    }
}
