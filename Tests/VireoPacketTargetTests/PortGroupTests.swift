import Testing
import Logging
@testable import VireoPacketTarget
import VireoWire

/// Multi-queue NICs as one switch port (`PortGroups`) and per-port allow-lists (`PacketSwitch`).
@Suite struct PortGroupTests {
    static let a = MACAddress("52:54:00:00:00:0a")!, b = MACAddress("52:54:00:00:00:0b")!
    static let c = MACAddress("52:54:00:00:00:0c")!

    @Test func pairsWithOneKeyAreOnePort() {
        var g = PortGroups(capacity: 8)
        let nic = PortKey.random()
        #expect(g.join(slot: 0, key: nic) == (0, true))
        #expect(g.join(slot: 1, key: nil) == (1, true))           // unkeyed: a port of its own
        #expect(g.join(slot: 2, key: nic) == (0, false))          // second pair of the NIC
        #expect(g.join(slot: 3, key: .named("vm1")) == (2, true))
        #expect(g.join(slot: 4, key: nil) == (3, true))
        #expect(g.join(slot: 5, key: .named("vm1")) == (2, false))
        #expect(g.members(of: 0) == [0, 2] && g.members(of: 2) == [3, 5])
        #expect(g.group(ofSlot: 2) == 0 && g.group(ofSlot: 4) == 3 && g.group(ofSlot: 7) == -1)
        #expect(g.key(of: 2) == .named("vm1"))
        // A pair leaving keeps the port while another remains; the last one ends it.
        #expect(g.leave(slot: 0)! == (0, false))
        #expect(g.members(of: 0) == [2])
        #expect(g.leave(slot: 2)! == (0, true))
        #expect(g.leave(slot: 2) == nil)
        #expect(g.key(of: 0) == nil)
        // The freed group number is reused; the same key again starts a new port.
        #expect(g.join(slot: 0, key: nic) == (0, true))
    }

    @Test func framesPickOnePairByFlowThenByCredit() {
        var g = PortGroups(capacity: 8)
        let k = PortKey.random()
        for s in [1, 4, 6] { _ = g.join(slot: s, key: k) }
        // The hashed pair when it has credit; the same hash always picks the same pair.
        for h: UInt64 in [0, 1, 2, 3, 1000] {
            let p = g.pick(group: 0, hash: { h }, usable: { _ in true })!
            #expect(p.chosen == [1, 4, 6][Int(h % 3)] && p.preferred == p.chosen)
        }
        // No credit on the hashed pair: the next one with credit takes it.
        let p = g.pick(group: 0, hash: { 1 }, usable: { $0 != 4 })!
        #expect(p.chosen == 6 && p.preferred == 4)
        let none = g.pick(group: 0, hash: { 2 }, usable: { _ in false })!
        #expect(none.chosen == nil && none.preferred == 6)
        #expect(g.pick(group: 5, hash: { 0 }, usable: { _ in true }) == nil)
        // One member: the hash is not even computed.
        _ = g.join(slot: 2, key: nil)
        #expect(g.pick(group: 1, hash: { Issue.record("hashed a one-pair port"); return 0 }, usable: { _ in true })?.chosen == 2)
    }

    @Test func flowHashFollowsAddressesAndPorts() {
        func frame(src: UInt8, dport: UInt16, proto: UInt8 = 6) -> [UInt8] {
            var f = [UInt8](repeating: 0, count: 12 + 14 + 20 + 8)
            f[12..<18] = [0x52, 0x54, 0, 0, 0, 0x0b]
            f[18..<24] = [0x52, 0x54, 0, 0, 0, src]
            f[24] = 0x08; f[25] = 0x00
            f[26] = 0x45; f[26 + 9] = proto
            f[26 + 12..<26 + 16] = [10, 0, 0, src]; f[26 + 16..<26 + 20] = [10, 0, 0, 2]
            f[46] = 0x30; f[47] = 0x39; f[48] = UInt8(dport >> 8); f[49] = UInt8(dport & 0xff)
            return f
        }
        func hash(_ f: [UInt8]) -> UInt64 { f.withUnsafeBytes { PortGroups.flowHash($0.baseAddress!, count: f.count) } }
        #expect(hash(frame(src: 1, dport: 80)) == hash(frame(src: 1, dport: 80)))
        #expect(hash(frame(src: 1, dport: 80)) != hash(frame(src: 1, dport: 81)))
        #expect(hash(frame(src: 1, dport: 80)) != hash(frame(src: 3, dport: 80)))
        #expect(hash(frame(src: 1, dport: 80, proto: 1)) == hash(frame(src: 1, dport: 81, proto: 1)))  // ICMP: no ports
        // Many TCP flows spread over 4 pairs.
        var used = Set<UInt64>()
        for p in 0..<64 { used.insert(hash(frame(src: 1, dport: UInt16(1000 + p))) % 4) }
        #expect(used.count == 4)
        let runt = Array(frame(src: 1, dport: 80).prefix(30))         // IPv4 header cut short: MACs only
        #expect(hash(runt) == hash(runt))
    }

    @Test func portAllowListsApplyOnTopOfTheNetworks() {
        var s = PacketSwitch(agingSeconds: 300, tableCapacity: 64, maxPorts: 8, allowed: [Self.a, Self.b])
        for p in 0..<3 { s.addPort(p) }
        s.setAllowList([Self.a], port: 0)
        s.setAllowList([Self.b, Self.c], port: 1)
        func send(_ src: MACAddress, from port: Int) -> PacketSwitch.Verdict {
            s.forward(PacketFrame.Summary(destination: .broadcast, source: src, etherType: 0x0800), ingress: port, now: 1) { _ in }
        }
        #expect(send(Self.a, from: 0) == .delivered(2))
        #expect(send(Self.b, from: 0) == .dropped(.notAllowed))    // not port 0's
        #expect(send(Self.b, from: 1) == .delivered(2))
        #expect(send(Self.c, from: 1) == .dropped(.notAllowed))    // port 1's, not the network's
        #expect(s.isAllowed(Self.b, port: 2))                       // no list of its own: the network's
        #expect(send(Self.b, from: 2) == .dropped(.macConflict))    // but b is live on port 1: a spoof
        #expect(s.isAllowed(Self.a, port: 0) && !s.isAllowed(Self.a, port: 1))
        // A removed port forgets its list (the number may be reused by another NIC).
        s.removePort(0)
        s.addPort(0)
        #expect(s.isAllowed(Self.b, port: 0))
    }
}

/// Port-key ownership is by peer host (all queue pairs of a NIC come from one initiator host).
@Suite struct PortKeyHolderTests {
    @Test func peerHostIsTheAddressWithoutThePort() {
        #expect(PacketNetwork.host(of: "10.99.0.1:4420") == "10.99.0.1")
        #expect(PacketNetwork.host(of: "fe80::1:4420") == "fe80::1")
        #expect(PacketNetwork.host(of: "nohost") == "nohost")
    }

    @Test func namedPortsAreCheckedAgainstTheConfig() throws {
        var cfg = NetworkConfig(name: "lan0")
        let open = try PacketNetwork(config: cfg, logger: .init(label: "t"), retire: { _ in })
        #expect(open.portProblem(nil) == nil && open.portProblem(PortKey.random()) == nil)
        #expect(open.portProblem(.named("vm1"))?.contains("no named ports") == true)
        cfg.ports = [PortConfig(name: "vm1"), PortConfig(name: "vm2")]
        let named = try PacketNetwork(config: cfg, logger: .init(label: "t"), retire: { _ in })
        #expect(named.portProblem(.named("vm2")) == nil)
        #expect(named.portProblem(.named("vm3"))?.contains("its ports: vm1, vm2") == true)
        #expect(named.portProblem(nil)?.contains("named ports only") == true)
        #expect(named.portProblem(PortKey.random())?.contains("named ports only") == true)
    }
}
