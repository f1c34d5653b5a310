import Testing
@testable import VireoWire

/// The port key of packet connect requests (flags bits 1-2 in the host-id bytes).
@Suite struct PortKeyTests {
    func request(_ port: PortKey?) -> ConnectRequest {
        ConnectRequest(kind: .packet, name: "lan0", queueIndex: 1, queueDepth: 8, maxSegments: 2, maxIOBytes: 1530,
                       hostID: Array(1...16), wantsWrite: false, port: port)
    }

    @Test func namedAndAnonymousKeysRoundTrip() throws {
        let key = PortKey.random()
        for port in [PortKey.named("vm1"), .named("a.b_c-123456789"), key, nil] {
            let bytes = try request(port).encoded()
            #expect(bytes.count == ConnectRequest.size)
            let back = try ConnectRequest(decoding: bytes)
            #expect(back.port == port)
            #expect(bytes[32] == (port == nil ? 0 : port?.name != nil ? 6 : 2))
            if port == nil { #expect(back.hostID == Array(1...16)) }
        }
        #expect(Array(try request(.named("vm1")).encoded()[16..<32]) == Array("vm1".utf8) + [UInt8](repeating: 0, count: 13))
        if case .anonymous(let b) = key { #expect(b.count == 16) } else { Issue.record("random key is not anonymous") }
        #expect(PortKey.random() != PortKey.random())
    }

    @Test func badKeysAreRefused() throws {
        // Names: too long, a ':' (reserved for NAME:MAC flag forms), empty.
        for n in ["0123456789abcdef", "vm:1", ""] { #expect(throws: WireError.self) { try request(.named(n)).encoded() } }
        var block = request(.named("vm1")); block.kind = .block
        #expect(throws: WireError.self) { try block.encoded() }
        let good = try request(.named("vm1")).encoded()
        var namedWithoutKey = good; namedWithoutKey[32] = 4
        var unknownBit = good; unknownBit[32] |= 16
        var blockWithKey = good; blockWithKey[5] = Wire.EndpointKind.block.rawValue
        var junkAfterName = good; junkAfterName[16 + 5] = 0x41           // "vm1\0\0A..."
        var badChar = good; badChar[16] = 0x20
        for b in [namedWithoutKey, unknownBit, blockWithKey, junkAfterName, badChar] {
            #expect(throws: WireError.self) { try ConnectRequest(decoding: b) }
        }
    }

    @Test func portJoinedGeometryOnlyAnswersAKeyedRequest() throws {
        let joined = PacketGeometry(mtu: 1500, receiveBuffers: 64, flags: PacketGeometry.flagPortJoined).encoded()
        #expect(try PacketGeometry(decoding: joined, requested: request(.named("vm1"))).portJoined)
        #expect(throws: WireError.self) { try PacketGeometry(decoding: joined, requested: request(nil)) }
        let other = PacketGeometry(mtu: 1500, receiveBuffers: 64, flags: 2).encoded()
        #expect(throws: WireError.self) { try PacketGeometry(decoding: other, requested: request(.named("vm1"))) }
        let plain = PacketGeometry(mtu: 1500, receiveBuffers: 64).encoded()
        #expect(try PacketGeometry(decoding: plain, requested: request(PortKey.random())).portJoined == false)
    }
}
