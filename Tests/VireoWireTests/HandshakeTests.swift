import Testing
@testable import VireoWire

@Suite struct HandshakeTests {
    let request = ConnectRequest(kind: .block, name: "vol-01.db", queueIndex: 3, queueDepth: 128, maxSegments: 126,
                                 maxIOBytes: 1 << 20, hostID: Array(1...16), wantsWrite: true)

    func geometry(depth: UInt16 = 128) -> BlockGeometry {
        BlockGeometry(capacityBytes: 64 << 20, blockSize: 512, flags: [.flush, .discard], maxDiscardBytes: 1 << 30,
                      maxWriteZeroesBytes: 1 << 30, queueDepth: depth, maxSegments: 126, maxIOBytes: 1 << 20,
                      maxInlineBytes: 4096, optimalIOBytes: 0)
    }

    @Test func connectRequestRoundTripsIn56Bytes() throws {
        let bytes = try request.encoded()
        #expect(bytes.count == 56)
        #expect(try ConnectRequest(decoding: bytes) == request)
        // rdma_cm over RoCE pads private data: trailing zeroes are fine.
        #expect(try ConnectRequest(decoding: bytes + [0, 0, 0, 0]) == request)
    }

    /// A path probe is flags bit 3; it keeps every other field.
    @Test func probeFlagRoundTrips() throws {
        var probe = request
        probe.probe = true
        let bytes = try probe.encoded()
        #expect(bytes[32] == ConnectRequest.flagWrite | ConnectRequest.flagProbe)
        let back = try ConnectRequest(decoding: bytes)
        #expect(back == probe && back.probe && back.wantsWrite)
        #expect(try !ConnectRequest(decoding: request.encoded()).probe)
    }

    @Test(arguments: ["", "a-name-that-is-far-too-long", "bad/slash", "spa ce", "ünï"])
    func badNamesAreRefused(name: String) {
        var r = request
        r.name = name
        #expect(throws: WireError.self) { _ = try r.encoded() }
    }

    @Test func malformedRequestsAreRefused() throws {
        let good = try request.encoded()
        var badMagic = good; badMagic[0] ^= 0xff
        var badKind = good; badKind[5] = 9
        var badFlags = good; badFlags[32] = 0x80
        var badName = good; badName[33] = 0x2f  // '/'
        var emptyName = good; for i in 33..<56 { emptyName[i] = 0 }
        for bytes in [badMagic, badKind, badFlags, badName, emptyName, Array(good.prefix(55)), []] {
            #expect(throws: WireError.self) { _ = try ConnectRequest(decoding: bytes) }
        }
        var otherVersion = good; otherVersion[4] = 7
        #expect(try ConnectRequest(decoding: otherVersion).version == 7)  // decodes; the target answers versionMismatch
    }

    @Test func geometryRoundTripsAndIsCheckedAgainstTheRequest() throws {
        let g = geometry()
        #expect(g.encoded().count == BlockGeometry.size)
        #expect(try BlockGeometry(decoding: g.encoded() + [0, 0], requested: request) == g)
        #expect(throws: WireError.self) { _ = try BlockGeometry(decoding: geometry(depth: 129).encoded(), requested: request) }
        var ro = geometry(); ro.flags.insert(.readOnly)
        #expect(throws: WireError("export is read-only")) { _ = try BlockGeometry(decoding: ro.encoded(), requested: request) }
        var odd = geometry(); odd.blockSize = 1000
        #expect(throws: WireError.self) { _ = try BlockGeometry(decoding: odd.encoded(), requested: request) }
        var ragged = geometry(); ragged.capacityBytes += 100
        #expect(throws: WireError.self) { _ = try BlockGeometry(decoding: ragged.encoded(), requested: request) }
        var version = g.encoded(); version[4] = Wire.version &+ 1
        #expect(throws: WireError.self) { _ = try BlockGeometry(decoding: version, requested: request) }
        #expect(throws: WireError.self) { _ = try BlockGeometry(decoding: Array(g.encoded().prefix(40)), requested: request) }
    }

    @Test func rejectCarriesReasonAndMessage() {
        let r = ConnectReject(.noSuchEndpoint, "no such export: vol9")
        let bytes = r.encoded()
        #expect(bytes.count <= 148)
        #expect(ConnectReject(decoding: bytes + [0, 0, 0]) == r)
        let long = ConnectReject(.internalError, String(repeating: "é", count: 200))
        let decoded = ConnectReject(decoding: long.encoded())
        #expect(decoded != nil && long.encoded().count <= 148 && decoded!.message.allSatisfy { $0 == "é" })
        #expect(ConnectReject(decoding: Array("plain text".utf8)) == nil)
    }

    /// A hostile target's reject text cannot inject log lines or terminal
    /// escapes: CR, LF, ESC and other control characters decode as `?`.
    @Test func rejectTextIsMadePrintable() throws {
        let evil = ConnectReject(.internalError, "busy\r\nvireo-initiator: all disks OK\u{1b}[2J\u{85}\u{7f}é")
        let decoded = try #require(ConnectReject(decoding: evil.encoded()))
        #expect(decoded.message == "busy??vireo-initiator: all disks OK?[2J??é")
        #expect(!decoded.message.unicodeScalars.contains { $0.properties.generalCategory == .control })
    }

    /// The layout's kind byte (offset 5) is filled in, not left zero.
    @Test func rejectCarriesItsEndpointKind() {
        let r = ConnectReject(.readOnly, "export vol0 is read-only")
        #expect(r.encoded()[5] == Wire.EndpointKind.block.rawValue)
        var p = ConnectReject(.noSuchEndpoint, "no such network: net0")
        p.kind = .packet
        #expect(p.encoded()[5] == Wire.EndpointKind.packet.rawValue)
        #expect(ConnectReject(decoding: p.encoded())?.kind == .packet)
    }
}
