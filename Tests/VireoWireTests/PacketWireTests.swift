import Testing
@testable import VireoWire

@Suite struct PacketWireTests {
    let request = ConnectRequest(kind: .packet, name: "lan0", queueIndex: 1, queueDepth: 256, maxSegments: 2,
                                 maxIOBytes: 1530, hostID: Array(1...16), wantsWrite: false)

    @Test func geometryRoundTripsIn24Bytes() throws {
        let g = PacketGeometry(mtu: 1500, receiveBuffers: 128)
        #expect(g.maxFrameBytes == 1530)
        let bytes = g.encoded()
        #expect(bytes.count == 24 && bytes.count <= 196)
        #expect(try PacketGeometry(decoding: bytes, requested: request) == g)
        #expect(try PacketGeometry(decoding: bytes + [0, 0, 0], requested: request) == g)  // RoCE padding
    }

    @Test func geometryIsCheckedAgainstTheRequest() throws {
        let good = PacketGeometry(mtu: 1500, receiveBuffers: 128).encoded()
        func refused(_ b: [UInt8], _ r: ConnectRequest? = nil) -> Bool {
            (try? PacketGeometry(decoding: b, requested: r ?? request)) == nil
        }
        #expect(refused(PacketGeometry(mtu: 9000, receiveBuffers: 128).encoded()))  // frame > initiator buffers
        #expect(refused(PacketGeometry(mtu: 1500, receiveBuffers: 0).encoded()))
        #expect(refused(PacketGeometry(mtu: 1500, receiveBuffers: 2000).encoded()))
        #expect(refused(PacketGeometry(mtu: 67, receiveBuffers: 8).encoded()))
        #expect(refused(PacketGeometry(mtu: 1500, receiveBuffers: 8, flags: 1).encoded()))
        var mismatch = good; mismatch[12] = 0xff  // max frame ≠ 12 + 14 + MTU + 4
        var magic = good; magic[0] ^= 1
        var kind = good; kind[5] = 1
        var version = good; version[4] = Wire.version &+ 1
        var reserved = good; reserved[6] = 1
        var reserved2 = good; reserved2[19] = 1
        for b in [mismatch, magic, kind, version, reserved, reserved2, Array(good.prefix(23)), []] { #expect(refused(b)) }
        var block = request; block.kind = .block
        #expect(refused(good, block))
    }

    static let immediates: [(UInt32, PacketImmediate.Kind, UInt16)] = [
        (0, .frame, 0), (0x0000_ffff, .frame, 0xffff), (0x4000_0000, .credit, 0), (0x4000_0010, .credit, 16),
        (0x0000_0040, .frame, 64),
    ]

    @Test(arguments: immediates)
    func immediateDecodes(raw: UInt32, kind: PacketImmediate.Kind, credits: UInt16) {
        let imm = PacketImmediate(rawValue: raw)
        #expect(imm == PacketImmediate(kind: kind, credits: credits))
        #expect(imm?.rawValue == raw)
    }

    @Test func reservedImmediatesAreRefused() {
        for raw: UInt32 in [0x8000_0000, 0xc000_0001, 0x0001_0000, 0x4010_0000, 0x2000_0000] {
            #expect(PacketImmediate(rawValue: raw) == nil)
        }
        #expect(PacketImmediate.frame(credits: 7) == 7)
        #expect(PacketImmediate.credit(7) == 0x4000_0007)
    }

    @Test func macAddressesParseAndPrint() throws {
        let m = try #require(MACAddress("52:54:00:AB:cd:0f"))
        #expect(m.rawValue == 0x5254_00ab_cd0f)
        #expect(m.description == "52:54:00:ab:cd:0f")
        #expect(MACAddress("52-54-00-ab-cd-0f") == m)
        #expect(!m.isMulticast)
        #expect(MACAddress.broadcast.isMulticast && MACAddress.broadcast.isBroadcast)
        #expect(MACAddress("01:00:5e:00:00:01")!.isMulticast)
        for bad in ["", "52:54:00:ab:cd", "52:54:00:ab:cd:0f:00", "52:54:00:ab:cd:g0", "525:4:00:ab:cd:0f"] {
            #expect(MACAddress(bad) == nil)
        }
        var b = [UInt8](repeating: 0, count: 8)
        b.withUnsafeMutableBytes { m.store(to: $0.baseAddress!, offset: 1) }
        #expect(b == [0, 0x52, 0x54, 0, 0xab, 0xcd, 0x0f, 0])
        #expect(b.withUnsafeBytes { MACAddress($0.baseAddress!, offset: 1) } == m)
    }

    // MARK: frames

    struct FrameSpec: Sendable, CustomTestStringConvertible {
        var length = 64
        var flags: UInt8 = 0
        var gso: UInt8 = 0
        var src: UInt64 = 0x5254_0000_0002
        var etherType: UInt16 = 0x0800
        var expected: PacketFrame.DropReason?
        var testDescription: String { "len \(length) flags \(flags) gso \(gso) src \(src) type \(etherType) → \(String(describing: expected))" }
    }

    static func frame(_ s: FrameSpec) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: max(s.length, 0) + 1)
        if s.length >= 1 { b[0] = s.flags }
        if s.length >= 2 { b[1] = s.gso }
        if s.length >= 26 {
            b.withUnsafeMutableBytes { raw in
                MACAddress(rawValue: 0x5254_0000_0001).store(to: raw.baseAddress!, offset: 12)
                MACAddress(rawValue: s.src).store(to: raw.baseAddress!, offset: 18)
                raw.storeBytes(of: s.etherType.bigEndian, toByteOffset: 24, as: UInt16.self)
            }
        }
        return b
    }

    static let table: [FrameSpec] = [
        FrameSpec(),
        FrameSpec(length: 26),
        FrameSpec(length: 25, expected: .tooShort),
        FrameSpec(length: 0, expected: .tooShort),
        FrameSpec(length: 1526),  // 12 + 14 + 1500
        FrameSpec(length: 1527, expected: .tooLong),  // untagged, one byte over the MTU
        FrameSpec(length: 1530, etherType: 0x8100),  // tagged frames get 4 more bytes
        FrameSpec(length: 1530, etherType: 0x88a8),
        FrameSpec(length: 1531, etherType: 0x8100, expected: .tooLong),
        FrameSpec(flags: 2),
        FrameSpec(flags: 1, expected: .badHeaderFlags),
        FrameSpec(flags: 4, expected: .badHeaderFlags),
        FrameSpec(gso: 1, expected: .gsoNotSupported),
        FrameSpec(gso: 0x80, expected: .gsoNotSupported),
        FrameSpec(src: 0xffff_ffff_ffff, expected: .badSourceAddress),
        FrameSpec(src: 0x0100_5e00_0001, expected: .badSourceAddress),
        FrameSpec(src: 0, expected: .badSourceAddress),
    ]

    @Test(arguments: table)
    func frameValidation(spec: FrameSpec) {
        let b = Self.frame(spec)
        let r = b.withUnsafeBytes { PacketFrame.validate($0.baseAddress!, byteCount: spec.length, maxFrame: 1530) }
        switch r {
        case .success(let s):
            #expect(spec.expected == nil)
            #expect(s.destination == MACAddress(rawValue: 0x5254_0000_0001))
            #expect(s.source == MACAddress(rawValue: spec.src))
            #expect(s.etherType == spec.etherType)
        case .failure(let reason):
            #expect(reason == spec.expected)
        }
    }

    /// Random and mutated frames never crash the validator, and whatever it
    /// accepts is within bounds with a unicast, nonzero source.
    @Test func fuzzFrameValidation() {
        var rng = SplitMix(seed: 0x5eed_0002)
        let valid = Self.frame(FrameSpec(length: 100))
        var accepted = 0
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 2 == 0 {
                b = (0..<Int(rng.next() % 1600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                b = valid
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                b.removeLast(Int(rng.next() % UInt64(b.count)))
            }
            let count = b.count
            b.append(0)  // never an empty buffer pointer
            let maxFrame = Int(rng.next() % 2) == 0 ? 1530 : 90
            let r = b.withUnsafeBytes { PacketFrame.validate($0.baseAddress!, byteCount: count, maxFrame: maxFrame) }
            if case .success(let s) = r {
                accepted += 1
                #expect(count >= 26 && count <= maxFrame)
                #expect(!s.source.isMulticast && !s.source.isZero)
                #expect(b[0] & ~2 == 0 && b[1] == 0)
            }
        }
        print("fuzzFrameValidation: accepted \(accepted) of 20000 (seed 0x5eed0002)")
    }
}
