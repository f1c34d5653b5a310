import CVireoVerbs
import CVireoSys
import Foundation
import Logging
import Testing
import VireoBlockTarget
import VireoDaemon
import VireoFabric
import VireoPacketTarget
import VireoSys
import VireoWire
import VireoTestSupport
import VireoTarget
#if canImport(Glibc)
import Glibc
#endif

/// Packet endpoints end to end over RDMA (soft-RoCE in the lab): a daemon in
/// this process serving networks, test ports connecting to it.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct PacketTargetIntegrationTests {
    let host = RDMAEnvironment.address
    static let macs = (1...4).map { MACAddress(rawValue: 0x5254_0000_0000 | UInt64($0)) }

    static func daemon(_ networks: [NetworkConfig], keepaliveSeconds: Double = 5, peerTimeoutSeconds: Double = 15) throws -> TargetDaemon {
        var logger = Logger(label: "vireo.target.test")
        logger.logLevel = .notice
        var config = TargetConfig(listen: "\(RDMAEnvironment.address):0", workers: 1, networks: networks)
        config.keepaliveSeconds = keepaliveSeconds
        config.peerTimeoutSeconds = peerTimeoutSeconds
        let d = try TargetDaemon(config: config, logger: logger)
        try d.start()
        return d
    }

    static func payload(_ seed: Int, _ n: Int = 200) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) } }

    static func waitUntil(_ body: () -> Bool) -> Bool {
        for _ in 0..<100 { if body() { return true }; usleep(50_000) }
        return body()
    }

    @Test func twoPortsExchangeFramesBothWays() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")])
        defer { d.stop() }
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        let b = try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: 1)
        #expect(a.geometry.mtu == 1500 && a.geometry.maxFrameBytes == 1530 && a.geometry.receiveBuffers == 256)
        #expect(Self.waitUntil { d.networks["lan0"]!.portCount == 2 })
        // A announces itself by broadcast; B learns nothing yet but receives it.
        let hello = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(1))
        #expect(a.send(hello))
        #expect(b.receive() == hello)
        // Unicast both ways, many frames (credits must come back), content verified.
        for i in 0..<100 {
            let ab = PacketTestPort.frame(dst: Self.macs[1], src: Self.macs[0], payload: Self.payload(i, 60 + i * 13))
            #expect(a.waitForCredits(1))
            #expect(a.send(ab))
            #expect(b.receive() == ab)
            let ba = PacketTestPort.frame(dst: Self.macs[0], src: Self.macs[1], payload: Self.payload(i + 1000, 1500))
            #expect(b.waitForCredits(1))
            #expect(b.send(ba))
            #expect(a.receive() == ba)
            if i % 20 == 19 { a.returnCredits(); b.returnCredits() }
        }
        let t = d.networks["lan0"]!.totals
        #expect(t.rxFrames == 201 && t.txFrames == 201)
        #expect(PortDrop.allCases.allSatisfy { t.drops($0) == 0 })
    }

    @Test func broadcastReachesAllOthersAndACreditlessPortDropsOnlyItsOwnFrames() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")])
        defer { d.stop() }
        let ports = try (0..<3).map { try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: UInt16($0)) }
        // A fourth port that posts no receive buffers: no credit for the target.
        let mute = try PacketTestPort(host: host, port: d.port, network: "lan0", receiveBuffers: 0, queueIndex: 3)
        #expect(Self.waitUntil { d.networks["lan0"]!.portCount == 4 })
        let bcast = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(5))
        #expect(ports[0].send(bcast))
        #expect(ports[1].receive() == bcast)
        #expect(ports[2].receive() == bcast)
        #expect(ports[0].receive(timeoutMilliseconds: 300) == nil)  // never back to the ingress port
        let n = d.networks["lan0"]!
        #expect(Self.waitUntil { n.totals.drops(.noCredit) == 1 })
        // The mute port announces its MAC; frames to it are dropped while others keep flowing.
        #expect(mute.send(PacketTestPort.frame(dst: .broadcast, src: Self.macs[3], payload: Self.payload(6))))
        #expect(ports[0].receive() != nil && ports[1].receive() != nil && ports[2].receive() != nil)
        for i in 0..<10 {
            #expect(ports[1].send(PacketTestPort.frame(dst: Self.macs[3], src: Self.macs[1], payload: Self.payload(i))))
            let f = PacketTestPort.frame(dst: Self.macs[1], src: Self.macs[2], payload: Self.payload(i + 50))
            #expect(ports[2].send(f))
            #expect(ports[1].receive() == f)
        }
        // Unicast frames to it wait for its credit, then drop as stalled after the hold timeout.
        #expect(Self.waitUntil { n.totals.drops(.stalled) == 10 })
        #expect(n.totals.drops(.noCredit) == 1, "only the flood found no credit")
    }

    @Test func malformedFramesAreDroppedAndCounted() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0", allowedMACs: [Self.macs[0], Self.macs[1]])])
        defer { d.stop() }
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        let b = try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: 1)
        #expect(Self.waitUntil { d.networks["lan0"]!.portCount == 2 })
        var gso = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(1))
        gso[1] = 1
        #expect(a.send(gso))
        #expect(a.send(Array(repeating: 0, count: 20)))  // short
        #expect(a.send(PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(1, 1501))))  // > MTU
        #expect(a.send(PacketTestPort.frame(dst: .broadcast, src: Self.macs[2], payload: Self.payload(1))))  // not allowed
        let good = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(2))
        #expect(a.send(good))
        #expect(b.receive() == good)  // only the good one arrives
        let t = d.networks["lan0"]!.totals
        #expect(Self.waitUntil { t.drops(.malformed) == 2 && t.drops(.tooLong) == 1 && t.drops(.notAllowed) == 1 })
        #expect(t.rxFrames == 5 && t.txFrames == 1)
    }

    /// Defect 9 (issue 10): no offload is negotiated, so a sender's virtio-net header (DATA_VALID, csum_*,
    /// hdr_len, gso_size) must never reach another port: a VM could make its peers skip checksum checks.
    @Test func senderHeaderFieldsAreNotForwarded() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")])
        defer { d.stop() }
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        let b = try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: 1)
        #expect(Self.waitUntil { d.networks["lan0"]!.portCount == 2 })
        var f = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(3))
        f[0] = 2  // VIRTIO_NET_HDR_F_DATA_VALID
        for i in 2..<12 { f[i] = UInt8(0x40 + i) }  // hdr_len, gso_size, csum_start, csum_offset, num_buffers
        #expect(a.send(f))
        let got = try #require(b.receive())
        #expect(Array(got[0..<12]) == [UInt8](repeating: 0, count: 12), "header forwarded: \(Array(got[0..<12]))")
        #expect(Array(got[12...]) == Array(f[12...]), "the frame itself crosses unchanged")
    }

    @Test func rejectsUnknownNetworkAndWrongKind() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")])
        defer { d.stop() }
        do {
            _ = try PacketTestPort(host: host, port: d.port, network: "nope")
            Issue.record("connected to an unknown network")
        } catch .rejected(let r) {
            #expect(r.reason == .noSuchEndpoint)
        } catch { Issue.record("\(error)") }
        do {
            _ = try PacketTestPort(host: host, port: d.port, network: "lan0", maxFrame: 1000)
            Issue.record("accepted buffers too small")
        } catch .rejected(let r) {
            #expect(r.reason == .malformed)
        } catch { Issue.record("\(error)") }
    }

    @Test func disconnectedPortIsRemoved() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")])
        defer { d.stop() }
        let n = d.networks["lan0"]!
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        var b: PacketTestPort? = try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: 1)
        #expect(Self.waitUntil { n.portCount == 2 })
        #expect(b!.send(PacketTestPort.frame(dst: .broadcast, src: Self.macs[1], payload: Self.payload(1))))
        #expect(a.receive() != nil)
        b!.connection.disconnect()
        b = nil
        #expect(Self.waitUntil { n.portCount == 1 })
        // Frames to the departed MAC now flood (nobody else): no send, no error.
        #expect(a.send(PacketTestPort.frame(dst: Self.macs[1], src: Self.macs[0], payload: Self.payload(2))))
        #expect(Self.waitUntil { n.totals.rxFrames == 2 })
        #expect(n.totals.txFrames == 1)
    }

    /// A port whose peer vanishes without a DISCONNECT (its QP silenced, as a crashed host's is):
    /// a live idle port answers the liveness probes and stays; the vanished one leaves its frame
    /// and probe unacknowledged, is dropped within the peer timeout, and the network goes on.
    @Test func vanishedPortIsDroppedByThePeerTimeout() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")], keepaliveSeconds: 1, peerTimeoutSeconds: 4)
        defer { d.stop() }
        let n = d.networks["lan0"]!
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        let b = try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: 1)
        #expect(Self.waitUntil { n.portCount == 2 })
        #expect(b.send(PacketTestPort.frame(dst: .broadcast, src: Self.macs[1], payload: Self.payload(1))))
        #expect(a.receive() != nil)
        // Both idle: probed, answered, kept.
        for _ in 0..<60 where n.totals.livenessProbes < 2 { usleep(100_000) }
        #expect(n.totals.livenessProbes >= 2, "idle ports were not probed")
        #expect(n.portCount == 2)
        var attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_RESET
        #expect(ibv_modify_qp(b.connection.queuePair.raw, &attr, Int32(IBV_QP_STATE.rawValue)) == 0)
        #expect(a.send(PacketTestPort.frame(dst: Self.macs[1], src: Self.macs[0], payload: Self.payload(2))))
        var gone = false
        for _ in 0..<300 where !gone { gone = n.portCount == 1; if !gone { usleep(100_000) } }
        #expect(gone, "the vanished port was never dropped")
        // The survivor is still switched: its next frame for the departed MAC floods to nobody.
        #expect(a.waitForCredits(1))
        #expect(a.send(PacketTestPort.frame(dst: Self.macs[1], src: Self.macs[0], payload: Self.payload(3))))
        #expect(Self.waitUntil { n.totals.rxFrames == 3 })
        withExtendedLifetime(b) {}
    }

    @Test func tapUplinkReceivesAFrame() throws {
        guard RDMAEnvironment.env("VIREO_LAB") == "1" || access("/dev/net/tun", F_OK) == 0 else { return }
        if access("/dev/net/tun", F_OK) != 0 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/sbin/modprobe")
            p.arguments = ["-d", RDMAEnvironment.env("VIREO_LAB_MODROOT") ?? "/run/vireo-lab", "tun"]
            try p.run()
            p.waitUntilExit()
            for _ in 0..<50 where access("/dev/net/tun", F_OK) != 0 { usleep(100_000) }
        }
        var net = NetworkConfig(name: "lan0", tap: "vtaptest0")
        net.mtu = 1500
        let d = try Self.daemon([net])
        defer { d.stop() }
        // A second handle on the same TAP: the kernel hands each frame the interface transmits to one queue;
        // instead read through a packet socket on the interface (frames the switch writes are "received" by it).
        let sock = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(UInt16(0x0003).bigEndian))  // ETH_P_ALL
        try #require(sock >= 0, "packet socket: errno \(errno)")
        defer { close(sock) }
        // Unbound: sees every interface; the frame is matched by content.
        try #require(if_nametoindex("vtaptest0") > 0)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        #expect(Self.waitUntil { d.networks["lan0"]!.portCount == 1 })
        let payload = Self.payload(9, 100)
        let f = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: payload)
        #expect(a.send(f))
        var buf = [UInt8](repeating: 0, count: 2048)
        var got: [UInt8]?
        for _ in 0..<20 {
            let n = recv(sock, &buf, buf.count, 0)
            if n <= 0 { break }
            if Array(buf[0..<n]) == Array(f[12...]) { got = Array(buf[0..<n]); break }
        }
        #expect(got == Array(f[12...]), "the TAP did not carry the frame (tx \(d.networks["lan0"]!.totals.txFrames))")
    }

    /// network_create / network_delete / port_list (issue #14): a network made at run time
    /// switches frames at once; deleting it is refused while ports are connected, forced it
    /// drops them; a bystander network's ports go on exchanging frames throughout.
    @Test func networksAreAddedAndRemovedAtRunTime() throws {
        let d = try Self.daemon([NetworkConfig(name: "lan0")])
        defer { d.stop() }
        let api = ControlProtocol(methods: d.controlMethods())
        func call(_ method: String, _ params: JSONValue? = nil) -> JSONValue {
            var request: [String: JSONValue] = ["jsonrpc": "2.0", "id": 1, "method": .string(method)]
            if let params { request["params"] = params }
            return JSONValue.parse(api.respond(to: JSONValue.object(request).encoded)!)!
        }
        let a = try PacketTestPort(host: host, port: d.port, network: "lan0")
        let b = try PacketTestPort(host: host, port: d.port, network: "lan0", queueIndex: 1)
        #expect(call("network_create", ["name": "lan9", "mtu": 1400])["result"]?["mtu"] == .int(1400))
        #expect(call("network_create", ["name": "lan9"])["error"]?["code"] == .int(-32002))
        let x = try PacketTestPort(host: host, port: d.port, network: "lan9")
        let y = try PacketTestPort(host: host, port: d.port, network: "lan9", queueIndex: 1)
        #expect(x.geometry.mtu == 1400)
        #expect(Self.waitUntil { d.networks["lan9"]?.portCount == 2 })
        let big = PacketTestPort.frame(dst: .broadcast, src: Self.macs[2], payload: Self.payload(9, 1000))
        #expect(x.send(big))
        #expect(y.receive() == big, "the new network switches at once")
        let ports = call("port_list", ["network": "lan9"])["result"]?.array ?? []
        #expect(ports.count == 2 && ports.allSatisfy { $0["network"] == "lan9" })
        #expect(call("network_delete", ["name": "lan9"])["error"]?["code"] == .int(-32003))
        #expect(call("network_delete", ["name": "lan9", "force": true])["result"]?["dropped_ports"] == .int(2))
        #expect(call("network_list", ["name": "lan9"])["error"]?["code"] == .int(-32001))
        #expect(call("port_list", ["network": "lan9"])["result"] == .array([]))
        let toml = call("config_get")["result"]?["toml"]?.string ?? ""
        #expect(try TargetConfig(toml: toml).networks.map(\.name) == ["lan0"])
        // The bystander network was not touched.
        let hello = PacketTestPort.frame(dst: .broadcast, src: Self.macs[0], payload: Self.payload(1))
        #expect(a.send(hello))
        #expect(b.receive() == hello)
        _ = (x, y)
    }
}
