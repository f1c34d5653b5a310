import Testing
@testable import Virtio
import VireoFabric
import VireoWire
@testable import VireoInitiator
import VireoDaemon

@Suite struct NicConfigTests {
    @Test func nicOption() throws {
        let c = try NicConfig.parse(nicOption: "socket=/run/vireo/vm1-net0.sock,target=10.99.0.1:4420,network=lan0,mac=52:54:00:00:00:01,queue-pairs=2")
        #expect(c.socket == "/run/vireo/vm1-net0.sock")
        #expect(c.target == FabricAddress(host: "10.99.0.1", port: 4420))
        #expect(c.network == "lan0")
        #expect(c.mac == MACAddress("52:54:00:00:00:01"))
        #expect(c.macBytes == [0x52, 0x54, 0, 0, 0, 1])
        #expect(c.queuePairs == 2)
        #expect(c.queueSize == NicConfig.defaultQueueSize)
        let d = try NicConfig.parse(nicOption: "socket=/s,target=10.99.0.1:4420,network=lan0,mac=52-54-00-00-00-02")
        #expect(d.queuePairs == 1)
    }

    @Test func nicProblemsOneLineEach() {
        do {
            _ = try NicConfig.parse(nicOption: "target=10.99.0.1,network=bad/name,mac=01:00:5e:00:00:01,queue-pairs=0,queue-size=100,colour=red")
            Issue.record("accepted a bad --nic")
        } catch {
            let p = error.problems
            #expect(p.contains { $0.contains("unknown key 'colour'") })
            #expect(p.contains { $0.contains("socket is missing") })
            #expect(p.contains { $0.contains("network 'bad/name'") })
            #expect(p.contains { $0.contains("multicast") })
            #expect(p.contains { $0.contains("queue-pairs must be 1...32, not 0") })
            #expect(p.contains { $0.contains("queue-size must be a power of two") })
            #expect(p.allSatisfy { !$0.contains("\n") && $0.hasPrefix("--nic ") })
        }
        #expect(throws: ConfigError.self) { try NicConfig.parse(nicOption: "socket=/s,target=10.99.0.1:4420,network=lan0,mac=52:54:00:00:00") }
        #expect(throws: ConfigError.self) { try NicConfig.parse(nicOption: "socket=/s,target=10.99.0.1:4420,network=lan0,mac=00:00:00:00:00:00") }
        #expect(throws: ConfigError.self) { try NicConfig.parse(nicOption: "socket=/s,target=10.99.0.1:4420,network=lan0") }
        #expect(throws: ConfigError.self) { try NicConfig.parse(nicOption: "socket=/s,target=10.99.0.1:4420,network=lan0,mac=52:54:00:00:00:01,queue-pairs=x") }
    }

    @Test func tomlDisksAndNics() throws {
        let text = """
        [[disk]]
        socket = "/run/vireo/vm1-disk0.sock"
        target = "10.99.0.1:4420"
        export = "vol0"

        [[nic]]
        socket = "/run/vireo/vm1-net0.sock"
        target = "10.99.0.1:4420"
        network = "lan0"
        mac = "52:54:00:00:00:01"
        queue_pairs = 2

        [[nic]]
        socket = "/run/vireo/vm1-net1.sock"
        target = "10.99.0.1:4420"
        network = "lan1"
        mac = "52:54:00:00:00:02"
        """
        let c = try ServeConfig.parse(toml: text, source: "vireo.toml")
        #expect(c.disks.count == 1 && c.nics.count == 2)
        #expect(c.nics[0].queuePairs == 2 && c.nics[1].network == "lan1")
        try c.checkUnique()
        let onlyNic = try ServeConfig.parse(toml: "[[nic]]\nsocket = \"/s\"\ntarget = \"10.99.0.1:4420\"\nnetwork = \"n\"\nmac = \"52:54:00:00:00:09\"\n")
        #expect(onlyNic.disks.isEmpty && onlyNic.nics.count == 1)
        #expect(onlyNic.statsFile == nil && onlyNic.statsIntervalSeconds == nil)
        let stats = try ServeConfig.parse(toml: "stats_file = \"/run/i.prom\"\nstats_interval = 2\n[[nic]]\nsocket = \"/s\"\ntarget = \"10.99.0.1:4420\"\nnetwork = \"n\"\nmac = \"52:54:00:00:00:09\"\n")
        #expect(stats.statsFile == "/run/i.prom" && stats.statsIntervalSeconds == 2)
        #expect(throws: ConfigError.self) {
            try ServeConfig.parse(toml: "stats_interval = 0\n[[nic]]\nsocket = \"/s\"\ntarget = \"10.99.0.1:4420\"\nnetwork = \"n\"\nmac = \"52:54:00:00:00:09\"\n")
        }
    }

    @Test func tomlProblems() {
        let text = """
        colour = 1
        [[nic]]
        socket = 5
        target = "10.99.0.1:4420"
        network = "lan0"
        mac = "nope"
        queue_pairs = "two"
        speed = 10
        """
        do {
            _ = try ServeConfig.parse(toml: text, source: "bad.toml")
            Issue.record("accepted a bad [[nic]]")
        } catch {
            let p = error.problems
            #expect(p.allSatisfy { $0.hasPrefix("bad.toml") })
            #expect(p.contains { $0.contains("unknown top-level key 'colour'") })
            #expect(p.contains { $0.contains("nic #1: socket must be a string") })
            #expect(p.contains { $0.contains("mac 'nope'") })
            #expect(p.contains { $0.contains("queue_pairs must be an integer") })
            #expect(p.contains { $0.contains("unknown key 'speed'") })
        }
        // Nothing to serve and no control socket to add devices through: refused at start.
        #expect(throws: ConfigError.self) { try ServeConfig.parse(toml: "", source: "x.toml").checkUnique() }
    }

    @Test func duplicatesAcrossDevices() throws {
        let nic = try NicConfig.parse(nicOption: "socket=/s,target=10.99.0.1:4420,network=lan0,mac=52:54:00:00:00:01")
        var nic2 = nic
        nic2.socket = "/t"
        let disk = try DiskConfig.parse(diskOption: "socket=/s,target=10.99.0.1:4420,export=vol0")
        do {
            try ServeConfig(disks: [disk], nics: [nic, nic2]).checkUnique()
            Issue.record("accepted duplicates")
        } catch {
            #expect(error.problems.contains("socket /s is used by more than one device"))
            #expect(error.problems.contains("mac 52:54:00:00:00:01 is used by more than one nic"))
        }
        #expect(throws: ConfigError.self) { try ServeConfig().checkUnique() }
    }
}

@Suite struct NetFramePlanTests {
    let guest = FakeGuest(base: 0x10_0000, size: 1 << 20)
    let regions: GuestRegionTable = {
        var t = GuestRegionTable()
        t.insert(.init(guestPhysAddr: 0x10_0000, size: 0x8_0000, rkey: 1, lkey: 11))
        t.insert(.init(guestPhysAddr: 0x18_0000, size: 0x8_0000, rkey: 2, lkey: 22))
        return t
    }()

    /// A TX chain (header + frame in two pieces, across two regions) is the SEND's gather list, as is.
    @Test func transmitChainIsTheGatherList() {
        let sges = UnsafeMutablePointer<ScatterGatherElement>.allocate(capacity: 4)
        defer { sges.deallocate() }
        let c = guest.chain(readable: [(0x10_1000, 12), (0x17_ffc0, 64), (0x18_0000, 100)], writable: [])
        let plan = NetFramePlan.transmit(c, regions: regions, maxSegments: 4, maxFrameBytes: 1530, into: sges)
        #expect(plan == .send(count: 3, bytes: 176))
        #expect(sges[0] == ScatterGatherElement(address: 0x10_1000, length: 12, lkey: 11))
        #expect(sges[1] == ScatterGatherElement(address: 0x17_ffc0, length: 64, lkey: 11))
        #expect(sges[2] == ScatterGatherElement(address: 0x18_0000, length: 100, lkey: 22))
    }

    @Test func transmitDrops() {
        let sges = UnsafeMutablePointer<ScatterGatherElement>.allocate(capacity: 2)
        defer { sges.deallocate() }
        func plan(_ r: [(UInt64, UInt32)], _ w: [(UInt64, UInt32)] = [], max: Int = 2) -> NetFramePlan.Transmit {
            NetFramePlan.transmit(guest.chain(readable: r, writable: w), regions: regions, maxSegments: max,
                                  maxFrameBytes: 1530, into: sges)
        }
        #expect(plan([(0x10_0000, 12), (0x10_1000, 20), (0x10_2000, 20)]) == .drop(.tooManySegments))
        #expect(plan([(0x10_0000, 12), (0x10_1000, 1519)]) == .drop(.tooLong))
        #expect(plan([(0x10_0000, 12), (0x10_1000, 1518)]) == .send(count: 2, bytes: 1530))
        #expect(plan([(0x10_0000, 25)]) == .drop(.tooShort))
        #expect(plan([(0x10_0000, 40)], [(0x10_1000, 1)]) == .drop(.writableSegment))
        #expect(plan([(0x20_0000, 60)]) == .drop(.unregistered))
    }

    /// An RX chain is a receive's scatter list; readable or oversized chains are refused.
    @Test func receiveChainIsTheScatterList() {
        let sges = UnsafeMutablePointer<ScatterGatherElement>.allocate(capacity: 2)
        defer { sges.deallocate() }
        let c = guest.chain(readable: [], writable: [(0x10_4000, 12), (0x18_4000, 1518)])
        #expect(NetFramePlan.receive(c, regions: regions, maxSegments: 2, into: sges) == 2)
        #expect(sges[0] == ScatterGatherElement(address: 0x10_4000, length: 12, lkey: 11))
        #expect(sges[1] == ScatterGatherElement(address: 0x18_4000, length: 1518, lkey: 22))
        let three = guest.chain(readable: [], writable: [(0x10_4000, 12), (0x10_5000, 8), (0x10_6000, 8)])
        #expect(NetFramePlan.receive(three, regions: regions, maxSegments: 2, into: sges) == nil)
        let readable = guest.chain(readable: [(0x10_4000, 12)], writable: [(0x10_5000, 2048)])
        #expect(NetFramePlan.receive(readable, regions: regions, maxSegments: 2, into: sges) == nil)
        let tiny = guest.chain(readable: [], writable: [(0x10_4000, 11)])
        #expect(NetFramePlan.receive(tiny, regions: regions, maxSegments: 2, into: sges) == nil)
        let outside = guest.chain(readable: [], writable: [(0x20_0000, 2048)])
        #expect(NetFramePlan.receive(outside, regions: regions, maxSegments: 2, into: sges) == nil)
    }

    /// A frame fills the buffers in order; num_buffers is a 2-byte write at header offset 10.
    @Test func spreadAndNumBuffers() {
        let caps: [UInt32] = [1000, 1000, 1000]
        let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: 3)
        defer { lengths.deallocate() }
        let used = caps.withUnsafeBufferPointer { NetFramePlan.spread(byteLength: 2100, capacities: $0, lengths: lengths) }
        #expect(used == 3 && lengths[0] == 1000 && lengths[1] == 1000 && lengths[2] == 100)
        let one = caps.withUnsafeBufferPointer { NetFramePlan.spread(byteLength: 60, capacities: $0, lengths: lengths) }
        #expect(one == 1 && lengths[0] == 60)
        let exact = caps.withUnsafeBufferPointer { NetFramePlan.spread(byteLength: 2000, capacities: $0, lengths: lengths) }
        #expect(exact == 2)
        // Header split across two segments: bytes 10 and 11 land in different ones.
        let c = guest.chain(readable: [], writable: [(0x10_8000, 11), (0x10_9000, 100)])
        guest.pointer(0x10_8000 + 10).storeBytes(of: 0xee, as: UInt8.self)
        #expect(NetFramePlan.writeReceiveHeader(numBuffers: 0x0203, into: c))
        #expect(guest.pointer(0x10_8000 + 10).load(as: UInt8.self) == 3)
        #expect(guest.pointer(0x10_9000).load(as: UInt8.self) == 2)
        #expect(!NetFramePlan.writeReceiveHeader(numBuffers: 1, into: guest.chain(readable: [], writable: [(0x10_a000, 8)])))
    }

    /// The header a sender (or a hostile target) put in front of a frame —
    /// DATA_VALID, NEEDS_CSUM, GSO fields — is zeroed before the guest sees
    /// it: no offload was negotiated, so a VM cannot make its peers skip
    /// checksum verification. Before: only num_buffers was written; the
    /// other ten bytes reached the guest as the target sent them.
    @Test func receivedHeaderCarriesOnlyNumBuffers() {
        for layout in [[(UInt64(0x10_b000), UInt32(1500))], [(0x10_c000, 5), (0x10_d000, 1500)]] {
            for (gpa, len) in layout { guest.pointer(gpa).initializeMemory(as: UInt8.self, repeating: 0xff, count: Int(len)) }
            let c = guest.chain(readable: [], writable: layout)
            #expect(NetFramePlan.writeReceiveHeader(numBuffers: 1, into: c))
            let header = (0..<12).map { c.writableByte(at: UInt32($0))!.load(as: UInt8.self) }
            #expect(header == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "\(layout.count) segment(s)")
            #expect(c.writableByte(at: 12)!.load(as: UInt8.self) == 0xff, "frame bytes untouched")
        }
    }
}

extension NetFramePlanTests {
    /// The MACs of a received frame are read in place, also when the header is split.
    @Test func addressesOfAReceivedFrame() {
        let f: [UInt8] = [UInt8](repeating: 0, count: 12) + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 7, 0x88, 0xb5]
        guest.pointer(0x10_c000).copyMemory(from: f, byteCount: f.count)
        let whole = guest.chain(readable: [], writable: [(0x10_c000, 2048)])
        #expect(NetFramePlan.addresses(in: whole)?.destination == .broadcast)
        #expect(NetFramePlan.addresses(in: whole)?.source == MACAddress("52:54:00:00:00:07"))
        guest.pointer(0x10_d000).copyMemory(from: Array(f[0..<15]), byteCount: 15)
        guest.pointer(0x10_e000).copyMemory(from: Array(f[15...]), byteCount: f.count - 15)
        let split = guest.chain(readable: [], writable: [(0x10_d000, 15), (0x10_e000, 100)])
        #expect(NetFramePlan.addresses(in: split)?.destination == .broadcast)
        #expect(NetFramePlan.addresses(in: split)?.source == MACAddress("52:54:00:00:00:07"))
        #expect(NetFramePlan.addresses(in: guest.chain(readable: [], writable: [(0x10_c000, 20)])) == nil)
    }
}

@Suite struct NetCreditTests {
    @Test func framesTakeCreditsAndCarryGrants() {
        var c = NetCredits()
        c.reset(targetBuffers: 2, announced: 3)
        #expect(c.transmit == 2 && c.owed == -3 - NetCredits.reserve)
        c.posted(3 + NetCredits.reserve)            // the announced receives and the reserve: nothing owed yet
        #expect(c.owed == 0)
        c.posted(4)
        #expect(c.takeForFrame() == 4)               // piggybacked
        #expect(c.owed == 0 && c.transmit == 1)
        #expect(c.takeForFrame() == 0)
        #expect(!c.canSend)
        c.granted(5)
        #expect(c.transmit == 5)
        c.granted(.max)
        c.granted(.max)
        #expect(c.transmit == 5 + 2 * 65535)
    }

    @Test func grantsAreCappedPerMessage() {
        var c = NetCredits()
        c.reset(targetBuffers: 0, announced: 0)
        c.posted(70_000 + NetCredits.reserve)
        #expect(c.takeGrant() == 65535)
        #expect(c.takeGrant() == 70_000 - 65535)
        #expect(c.takeGrant() == 0)
    }

    @Test func creditMessagePolicy() {
        var c = NetCredits()
        c.reset(targetBuffers: 8, announced: 1)
        #expect(!c.wantsCreditMessage(window: 256, idle: true))     // nothing owed
        c.posted(1 + NetCredits.reserve + 10)
        #expect(c.wantsCreditMessage(window: 256, idle: true))
        #expect(!c.wantsCreditMessage(window: 256, idle: false))    // a frame will carry it
        c.posted(54)
        #expect(c.wantsCreditMessage(window: 256, idle: false))     // a quarter of the window piled up
    }

    @Test func announcementKeepsTheReserve() {
        #expect(NetCredits.announcement(assembled: 0) == 0)
        #expect(NetCredits.announcement(assembled: NetCredits.reserve) == 0)
        #expect(NetCredits.announcement(assembled: NetCredits.reserve + 1) == 1)
        #expect(NetCredits.announcement(assembled: 100) == 100 - NetCredits.reserve)
    }
}

@Suite struct NetControlTests {
    typealias C = NetControlCommand.Class
    func cmd(_ cls: UInt8, _ c: UInt8, dataLength: UInt32) -> NetControlCommand {
        NetControlCommand(commandClass: cls, command: c, dataOffset: 2, dataLength: dataLength, ackOffset: 0)
    }
    let ok = NetControlCommand.ackOK, err = NetControlCommand.ackError

    /// What Linux sends at probe and on `ip link set promisc`: acked.
    @Test func linuxProbeCommands() {
        #expect(RemoteNetDevice.controlAck(cmd(C.rx, C.rxPromisc, dataLength: 1), u8: 1, u16: nil, queuePairs: 1) == ok)
        #expect(RemoteNetDevice.controlAck(cmd(C.rx, C.rxAllMulti, dataLength: 1), u8: 0, u16: nil, queuePairs: 1) == ok)
        #expect(RemoteNetDevice.controlAck(cmd(C.mac, C.macTableSet, dataLength: 8), u8: 0, u16: 0, queuePairs: 1) == ok)
        #expect(RemoteNetDevice.controlAck(cmd(C.mac, C.macAddrSet, dataLength: 6), u8: 0x52, u16: nil, queuePairs: 1) == ok)
        #expect(RemoteNetDevice.controlAck(cmd(C.mq, C.mqVQPairsSet, dataLength: 2), u8: 2, u16: 2, queuePairs: 2) == ok)
        #expect(RemoteNetDevice.controlAck(cmd(C.announce, C.announceAck, dataLength: 0), u8: nil, u16: nil, queuePairs: 1) == ok)
    }

    @Test func refusedCommands() {
        #expect(RemoteNetDevice.controlAck(cmd(C.mq, C.mqVQPairsSet, dataLength: 2), u8: 3, u16: 3, queuePairs: 2) == err)
        #expect(RemoteNetDevice.controlAck(cmd(C.mq, C.mqVQPairsSet, dataLength: 2), u8: 0, u16: 0, queuePairs: 2) == err)
        #expect(RemoteNetDevice.controlAck(cmd(C.mq, C.mqVQPairsSet, dataLength: 0), u8: nil, u16: nil, queuePairs: 2) == err)
        #expect(RemoteNetDevice.controlAck(cmd(C.rx, C.rxPromisc, dataLength: 1), u8: 7, u16: nil, queuePairs: 1) == err)
        #expect(RemoteNetDevice.controlAck(cmd(C.mac, C.macAddrSet, dataLength: 5), u8: 0, u16: 0, queuePairs: 1) == err)
        #expect(RemoteNetDevice.controlAck(cmd(C.guestOffloads, C.guestOffloadsSet, dataLength: 8), u8: 0, u16: 0, queuePairs: 1) == err)
        #expect(RemoteNetDevice.controlAck(cmd(C.vlan, C.vlanAdd, dataLength: 2), u8: 0, u16: 1, queuePairs: 1) == err)
    }
}
