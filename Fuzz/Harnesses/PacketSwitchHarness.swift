import VireoPacketTarget
import VireoWire

// Input: a sequence of operations on one switch (8 ports, a 4-entry MAC table
// so sweeps and a full table happen, 1 s aging). Each starts with an opcode
// byte and a port byte:
//   0 add port · 1 remove port · 2 allow-list (count u8, then 6-byte MACs; 0xff: none)
//   3 frame (length u8, then that many bytes: virtio-net header + Ethernet
//     frame, validated and forwarded when valid) · 4 advance the clock (u16 × 10 ms) · 5 sweep

extension FuzzHarness {
    /// Frame validation and the L2 switch's learning and forwarding.
    public static let packetSwitch = FuzzHarness(name: "packet-switch", run: PacketSwitchHarness.run,
                                                 seeds: PacketSwitchHarness.seeds)
}

enum PacketSwitchHarness {
    static let maxPorts = 8
    static let maxFrame = Int(PacketGeometry.maxFrameBytes(mtu: 1500))

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        var sw = PacketSwitch(agingSeconds: 1, tableCapacity: 4, maxPorts: maxPorts)
        var now: UInt64 = 1_000_000_000
        var ops = 0
        while !input.isEmpty, ops < 256 {
            ops += 1
            let op = input.read(UInt8.self) % 6
            let port = Int(input.read(UInt8.self)) % maxPorts
            switch op {
            case 0:
                if !sw.ports.contains(port) { sw.addPort(port) }
            case 1:
                sw.removePort(port)
                FuzzCheck.require(!sw.ports.contains(port), "removed port still a destination")
            case 2:
                let n = input.read(UInt8.self)
                var macs: [MACAddress]? = nil
                if n != 0xff {
                    macs = []
                    for _ in 0..<(n % 4) {
                        let b = input.take(6)
                        var raw: UInt64 = 0
                        for byte in b { raw = raw << 8 | UInt64(byte) }
                        macs?.append(MACAddress(rawValue: raw))
                    }
                }
                sw.setAllowList(macs, port: port)
            case 3:
                let bytes = input.take(Int(input.read(UInt8.self)) * 8)
                forward(bytes, ingress: port, now: now, switch: &sw)
            case 4:
                now &+= UInt64(input.read(UInt16.self)) * 10_000_000
            default:
                sw.sweep(now: now)
            }
            FuzzCheck.require(sw.learnedCount <= sw.tableCapacity, "MAC table grew past its capacity")
        }
    }

    static func forward(_ bytes: UnsafeRawBufferPointer, ingress: Int, now: UInt64, switch sw: inout PacketSwitch) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        defer { copy.deallocate() }
        copy.copyMemory(from: bytes)
        guard case .success(let summary) = PacketFrame.validate(UnsafeRawPointer(copy.baseAddress!), byteCount: bytes.count,
                                                                 maxFrame: maxFrame) else { return }
        let ports = sw.ports
        var delivered: [Int] = []
        let verdict = sw.forward(summary, ingress: ingress, now: now) { delivered.append($0) }
        FuzzCheck.require(!delivered.contains(ingress), "frame delivered back to its ingress port")
        FuzzCheck.require(Set(delivered).count == delivered.count, "frame delivered twice to one port")
        switch verdict {
        case .delivered(let n):
            FuzzCheck.require(n == delivered.count, "delivery count")
            FuzzCheck.require(delivered.allSatisfy { ports.contains($0) } || delivered.count == 1, "delivered to a non-port")
        case .dropped:
            FuzzCheck.require(delivered.isEmpty, "dropped frame delivered")
        }
    }

    /// A valid frame from `src` to `dst`, as a frame operation's bytes (padded to 8).
    static func frameOp(port: UInt8, src: UInt64, dst: UInt64) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: Wire.netHeaderSize + 64)
        f.withUnsafeMutableBytes { b in
            MACAddress(rawValue: dst).store(to: b.baseAddress!, offset: Wire.netHeaderSize)
            MACAddress(rawValue: src).store(to: b.baseAddress!, offset: Wire.netHeaderSize + 6)
        }
        f[Wire.netHeaderSize + 12] = 0x08
        return [3, port, UInt8(f.count / 8)] + f
    }

    static func seeds() -> [[UInt8]] {
        let a: UInt64 = 0x5254_0000_0001, b: UInt64 = 0x5254_0000_0002, c: UInt64 = 0x5254_0000_0003
        var learn: [UInt8] = [0, 0, 0, 1, 0, 2]
        learn += frameOp(port: 0, src: a, dst: MACAddress.broadcast.rawValue)
        learn += frameOp(port: 1, src: b, dst: a)
        learn += frameOp(port: 0, src: a, dst: b)
        learn += [4, 0, 0xf4, 0x01]                      // 5 s later: entries aged
        learn += frameOp(port: 2, src: c, dst: a)
        learn += [5, 0, 1, 1]
        learn += frameOp(port: 0, src: a, dst: b)
        var allow: [UInt8] = [0, 0, 0, 1, 2, 1, 1, 0x52, 0x54, 0, 0, 0, 2]
        allow += frameOp(port: 1, src: b, dst: a)
        allow += frameOp(port: 1, src: c, dst: a)
        allow += [2, 1, 0xff]
        allow += frameOp(port: 1, src: c, dst: a)
        return [learn, allow]
    }
}
