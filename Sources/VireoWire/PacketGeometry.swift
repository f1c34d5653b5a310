/// What a target grants a packet connection (rdma_cm accept private data, 24 bytes).
///
/// Layout: magic u32 · version u8 · kind u8 (2) · reserved u16 · MTU u32 ·
/// max frame bytes u32 · receive buffers per port u16 · reserved u16 · flags u32.
///
/// `maxFrameBytes` is always `12 + 14 + MTU + 4` (virtio-net header, Ethernet
/// header, payload, one VLAN tag): the largest SEND either side may make, and
/// the size every receive buffer must have. `receiveBuffers` is how many
/// receive buffers the target posts for the port: the initiator's initial
/// credits (it may have at most that many frames in flight toward the target).
public struct PacketGeometry: Equatable, Sendable {
    public static let size = 24
    /// Smallest MTU a network may have (IPv4 minimum).
    public static let minMTU: UInt32 = 68
    /// Largest MTU a network may have.
    public static let maxMTU: UInt32 = 65_535
    /// Bytes a frame carries beyond its MTU-sized payload: virtio-net header, Ethernet header, a VLAN tag.
    public static let frameOverhead: UInt32 = UInt32(Wire.netHeaderSize + Wire.ethernetHeaderSize + Wire.vlanTagSize)

    public var mtu: UInt32
    public var maxFrameBytes: UInt32
    /// Target receive buffers per port: the initiator's initial credits.
    public var receiveBuffers: UInt16
    /// Bit 0 (`flagPortJoined`): the connection joined the switch port of its
    /// request's port key, with the NIC's other queue pairs (set only when the
    /// request carried a key). Other bits zero.
    public var flags: UInt32
    public static let flagPortJoined: UInt32 = 1

    /// Whether the target made this queue pair part of one port with the NIC's others.
    public var portJoined: Bool { flags & Self.flagPortJoined != 0 }

    public init(mtu: UInt32, receiveBuffers: UInt16, flags: UInt32 = 0) {
        self.mtu = mtu
        self.maxFrameBytes = Self.maxFrameBytes(mtu: mtu)
        self.receiveBuffers = receiveBuffers
        self.flags = flags
    }

    /// `12 + 14 + mtu + 4`, saturating at `UInt32.max` (never reached for a valid MTU).
    public static func maxFrameBytes(mtu: UInt32) -> UInt32 {
        let (sum, overflow) = mtu.addingReportingOverflow(frameOverhead)
        return overflow ? .max : sum
    }

    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            LE.store(p, 0, Wire.magic)
            LE.store(p, 4, Wire.version)
            LE.store(p, 5, Wire.EndpointKind.packet.rawValue)
            LE.store(p, 8, mtu)
            LE.store(p, 12, maxFrameBytes)
            LE.store(p, 16, receiveBuffers)
            LE.store(p, 20, flags)
        }
        return b
    }

    /// Decodes the target's accept data and checks it against what was asked:
    /// frames must fit the initiator's buffers (`maxIOBytes`), the MTU must be
    /// sane and match the frame size, reserved bytes must be zero, flags known.
    public init(decoding bytes: [UInt8], requested: ConnectRequest) throws(WireError) {
        guard bytes.count >= Self.size else { throw WireError("accept data of \(bytes.count) bytes, need \(Self.size)") }
        var out: Result<PacketGeometry, WireError> = .failure(WireError("?"))
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            guard LE.load(p, 0, as: UInt32.self) == Wire.magic,
                  LE.load(p, 5, as: UInt8.self) == Wire.EndpointKind.packet.rawValue else {
                out = .failure(WireError("accept data is not a Vireo packet geometry"))
                return
            }
            guard LE.load(p, 4, as: UInt8.self) == Wire.version else {
                out = .failure(WireError("target speaks wire version \(LE.load(p, 4, as: UInt8.self)), we speak \(Wire.version)"))
                return
            }
            guard LE.load(p, 6, as: UInt16.self) == 0, LE.load(p, 18, as: UInt16.self) == 0 else {
                out = .failure(WireError("reserved bytes of the packet geometry are not zero"))
                return
            }
            var g = PacketGeometry(mtu: LE.load(p, 8, as: UInt32.self), receiveBuffers: LE.load(p, 16, as: UInt16.self),
                                   flags: LE.load(p, 20, as: UInt32.self))
            g.maxFrameBytes = LE.load(p, 12, as: UInt32.self)
            if let problem = g.problem(requested: requested) { out = .failure(WireError(problem)) } else { out = .success(g) }
        }
        self = try out.get()
    }

    /// Why this geometry is unusable for `requested`, or nil.
    func problem(requested r: ConnectRequest) -> String? {
        if r.kind != .packet { return "a packet geometry answers a \(r.kind) request" }
        if flags & ~Self.flagPortJoined != 0 || (portJoined && r.port == nil) {
            return "unknown packet geometry flags 0x\(String(flags, radix: 16))"
        }
        if mtu < Self.minMTU || mtu > Self.maxMTU { return "MTU \(mtu) outside \(Self.minMTU)...\(Self.maxMTU)" }
        if maxFrameBytes != Self.maxFrameBytes(mtu: mtu) {
            return "max frame \(maxFrameBytes) bytes does not match MTU \(mtu) (need \(Self.maxFrameBytes(mtu: mtu)))"
        }
        if maxFrameBytes > r.maxIOBytes { return "frames of \(maxFrameBytes) bytes exceed our \(r.maxIOBytes)-byte buffers" }
        if receiveBuffers == 0 || Int(receiveBuffers) > Wire.maxQueueDepthLimit {
            return "target receive buffers \(receiveBuffers) outside 1...\(Wire.maxQueueDepthLimit)"
        }
        return nil
    }
}
