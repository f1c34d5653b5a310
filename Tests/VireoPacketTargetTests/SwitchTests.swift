import Testing
import VireoPacketTarget
import VireoWire

@Suite struct SwitchTests {
    static let a = MACAddress("52:54:00:00:00:0a")!, b = MACAddress("52:54:00:00:00:0b")!
    static let c = MACAddress("52:54:00:00:00:0c")!
    static func frame(_ dst: MACAddress, _ src: MACAddress) -> PacketFrame.Summary {
        PacketFrame.Summary(destination: dst, source: src, etherType: 0x0800)
    }

    func fourPorts(aging: Int = 300, allowed: [MACAddress]? = nil) -> PacketSwitch {
        var s = PacketSwitch(agingSeconds: aging, tableCapacity: 64, maxPorts: 8, allowed: allowed)
        for p in 0..<4 { s.addPort(p) }
        return s
    }

    func route(_ s: inout PacketSwitch, _ f: PacketFrame.Summary, from ingress: Int, at now: UInt64 = 1)
        -> (PacketSwitch.Verdict, [Int]) {
        var out: [Int] = []
        let v = s.forward(f, ingress: ingress, now: now) { out.append($0) }
        return (v, out)
    }

    /// The switch answers where a frame goes and never calls back: a flood, then the learned port.
    @Test func routeAnswersADestination() {
        var s = fourPorts()
        #expect(s.route(Self.frame(Self.b, Self.a), ingress: 1, now: 1) == .flood)
        #expect(s.route(Self.frame(Self.a, Self.b), ingress: 2, now: 2) == .port(1))
        #expect(s.route(Self.frame(Self.a, Self.c), ingress: 1, now: 3) == .dropped(.filtered))
    }

    @Test func unknownUnicastFloodsToAllButIngress() {
        var s = fourPorts()
        let (v, out) = route(&s, Self.frame(Self.b, Self.a), from: 1)
        #expect(v == .delivered(3) && out == [0, 2, 3])
    }

    @Test func broadcastAndMulticastFloodEvenWhenLearned() {
        var s = fourPorts()
        _ = route(&s, Self.frame(.broadcast, Self.c), from: 0)
        #expect(route(&s, Self.frame(.broadcast, Self.a), from: 2).1 == [0, 1, 3])  // c is learned on 0: still flooded
        #expect(route(&s, Self.frame(MACAddress("33:33:00:00:00:01")!, Self.b), from: 3).1 == [0, 1, 2])
    }

    @Test func learnedUnicastGoesToOnePort() {
        var s = fourPorts()
        _ = route(&s, Self.frame(.broadcast, Self.a), from: 2)
        let (v, out) = route(&s, Self.frame(Self.a, Self.b), from: 0)
        #expect(v == .delivered(1) && out == [2])
        #expect(route(&s, Self.frame(Self.b, Self.a), from: 2).1 == [0])
    }

    /// Issue 12: a live learned address stays with its port. Another port sending from it is
    /// spoofing: its frames are dropped (`macConflict`) and the address is not moved; once the
    /// entry expired, or to a port whose allow-list names the address, it moves.
    @Test func learnedAddressesStayWithTheirPort() {
        var s = fourPorts(aging: 10)
        let sec: UInt64 = 1_000_000_000
        _ = route(&s, Self.frame(.broadcast, Self.a), from: 2, at: sec)
        #expect(route(&s, Self.frame(.broadcast, Self.a), from: 3, at: 2 * sec).0 == .dropped(.macConflict))
        #expect(route(&s, Self.frame(Self.a, Self.b), from: 0, at: 3 * sec).1 == [2], "a's traffic still goes to its port")
        // Expired on port 2: port 3 may learn it.
        _ = route(&s, Self.frame(.broadcast, Self.a), from: 3, at: 20 * sec)
        #expect(route(&s, Self.frame(Self.a, Self.b), from: 0, at: 21 * sec).1 == [3])
        // A port allowed to use the address takes it over while it is live.
        s.setAllowList([Self.a], port: 1)
        #expect(route(&s, Self.frame(.broadcast, Self.a), from: 1, at: 22 * sec).0 == .delivered(3))
        #expect(route(&s, Self.frame(Self.a, Self.b), from: 0, at: 23 * sec).1 == [1])
    }

    /// Issue 12: a port flooding the switch with random source addresses learns at most its
    /// share; a full table is swept at most once per interval (never per frame); both counted.
    @Test func macFloodingIsBoundedPerPortAndCounted() {
        var s = PacketSwitch(agingSeconds: 300, tableCapacity: 64, maxPorts: 4, macsPerPort: 16)
        for p in 0..<4 { s.addPort(p) }
        func mac(_ i: Int) -> MACAddress { MACAddress(rawValue: 0x0200_0000_0000 | UInt64(i)) }
        for i in 0..<10_000 { _ = s.route(Self.frame(.broadcast, mac(i)), ingress: 0, now: 1_000_000_000) }
        #expect(s.learnedCount == 16 && s.unlearnedPortLimit == 10_000 - 16)
        // The other ports still learn theirs.
        for p in 1..<4 { _ = s.route(Self.frame(.broadcast, mac(100_000 + p)), ingress: p, now: 1_000_000_000) }
        for p in 1..<4 { #expect(s.lookup(mac(100_000 + p), now: 1_000_000_000) == p) }
        // A full table of live entries: learning stops, counted, with at most one sweep per interval.
        var full = PacketSwitch(agingSeconds: 300, tableCapacity: 8, maxPorts: 4, macsPerPort: 1000)
        full.addPort(0); full.addPort(1)
        for i in 0..<5_000 { _ = full.route(Self.frame(.broadcast, mac(i)), ingress: i % 2, now: 5_000_000_000 + UInt64(i)) }
        #expect(full.learnedCount == 8 && full.unlearnedTableFull == 5_000 - 8)
        #expect(full.sweeps == 1, "one sweep in the interval, not one per frame")
    }

    @Test func destinationOnIngressPortIsFiltered() {
        var s = fourPorts()
        _ = route(&s, Self.frame(.broadcast, Self.a), from: 1)
        let (v, out) = route(&s, Self.frame(Self.a, Self.c), from: 1)
        #expect(v == .dropped(.filtered) && out.isEmpty)
    }

    @Test func entriesAgeOutWithTheInjectedClock() {
        var s = fourPorts(aging: 10)
        let sec: UInt64 = 1_000_000_000
        _ = route(&s, Self.frame(.broadcast, Self.a), from: 2, at: 100 * sec)
        #expect(s.lookup(Self.a, now: 109 * sec) == 2)
        #expect(route(&s, Self.frame(Self.a, Self.b), from: 0, at: 110 * sec).1 == [2])
        #expect(s.lookup(Self.a, now: 111 * sec) == nil)
        #expect(route(&s, Self.frame(Self.a, Self.b), from: 0, at: 111 * sec).1 == [1, 2, 3])  // floods again
        s.sweep(now: 200 * sec)
        #expect(s.learnedCount == 0)
    }

    @Test func fullTableStopsLearningAfterSweep() {
        var s = PacketSwitch(agingSeconds: 10, tableCapacity: 2, maxPorts: 4)
        s.addPort(0); s.addPort(1)
        s.learn(Self.a, port: 0, now: 1)
        s.learn(Self.b, port: 0, now: 1)
        s.learn(Self.c, port: 1, now: 2)
        #expect(s.lookup(Self.c, now: 2) == nil && s.learnedCount == 2)
        s.learn(Self.c, port: 1, now: 20_000_000_000)  // the others expired: swept, then learned
        #expect(s.lookup(Self.c, now: 20_000_000_000) == 1)
    }

    @Test func allowListDropsUnknownSources() {
        var s = fourPorts(allowed: [Self.a])
        #expect(route(&s, Self.frame(.broadcast, Self.b), from: 0).0 == .dropped(.notAllowed))
        #expect(s.lookup(Self.b, now: 1) == nil)  // not learned either
        #expect(route(&s, Self.frame(.broadcast, Self.a), from: 0).0 == .delivered(3))
        var out: [Int] = []
        #expect(s.forward(Self.frame(.broadcast, Self.b), ingress: 1, now: 1, checkAllowList: false) { out.append($0) }
            == .delivered(3))
    }

    @Test func removedPortIsForgottenAndNotFlooded() {
        var s = fourPorts()
        _ = route(&s, Self.frame(.broadcast, Self.a), from: 2)
        s.removePort(2)
        #expect(s.lookup(Self.a, now: 1) == nil)
        #expect(route(&s, Self.frame(Self.a, Self.b), from: 0).1 == [1, 3])
    }

    @Test func frameValidationMapsToPortDrops() {
        #expect(PortDrop(.tooLong) == .tooLong)
        for r in PacketFrame.DropReason.allCases where r != .tooLong { #expect(PortDrop(r) == .malformed) }
    }
}

/// Defect 8 (issue 10): one port's broadcast flood must not buy unbounded copies from the switch's thread.
@Suite struct FloodBudgetTests {
    @Test func oneSendersFloodIsCutAtItsBudgetAndOthersStillFlood() {
        var s = PacketSwitch(agingSeconds: 300, tableCapacity: 64, maxPorts: 8)
        for p in 0..<4 { s.addPort(p) }
        let now: UInt64 = 5_000_000_000
        var delivered = 0, dropped = 0
        for _ in 0..<20_000 {
            var copies = 0
            switch s.forward(SwitchTests.frame(.broadcast, SwitchTests.a), ingress: 0, now: now, { _ in copies += 1 }) {
            case .delivered(let n):
                #expect(n == 3 && copies == 3, "a flood is delivered whole or not at all")
                delivered += 1
            case .dropped:
                #expect(copies == 0)
                dropped += 1
            }
        }
        #expect(dropped > 0, "20 000 broadcasts (60 000 copies) in one instant were all copied")
        #expect(delivered > 0, "a sender within its budget floods")
        // Another port's flood in the same instant is not starved by port 0's.
        var out: [Int] = []
        #expect(s.forward(SwitchTests.frame(.broadcast, SwitchTests.b), ingress: 1, now: now) { out.append($0) } == .delivered(3))
        #expect(out == [0, 2, 3])
        // Port 0's budget refills with time.
        out = []
        #expect(s.forward(SwitchTests.frame(.broadcast, SwitchTests.a), ingress: 0, now: now + 1_000_000_000) { out.append($0) }
            == .delivered(3))
        // Known unicast is not flood: it is never cut.
        #expect(s.forward(SwitchTests.frame(SwitchTests.b, SwitchTests.a), ingress: 0, now: now + 1_000_000_000) { _ in } == .delivered(1))
    }
}
