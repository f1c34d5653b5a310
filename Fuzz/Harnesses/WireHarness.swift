import VireoWire

// Input: selector byte, then the bytes the chosen decoder sees.
//   0 connect request · 1 block geometry · 2 connect reject · 3 packet geometry
//   4 command capsule · 5 response capsule · 6 packet frame + immediate · 7 port key
//   8 handshake: then 0 hello (the target's side), 1 accept's handshake part, 2 result (the initiator's)
// Geometry inputs (1, 3) start with one byte choosing the request they answer;
// capsules (4) with one byte choosing the connection's limits; frames (6)
// with a u16 max frame size and a u32 immediate.

extension FuzzHarness {
    /// The wire protocol's decoders (VireoWire), fed a peer's bytes.
    public static let wire = FuzzHarness(name: "wire", run: WireHarness.run, seeds: WireHarness.seeds)
}

enum WireHarness {
    static let decoders = 9

    /// Requests a geometry may answer.
    static let requests: [ConnectRequest] = [
        ConnectRequest(kind: .block, name: "vol0", queueIndex: 0, queueDepth: 128, maxSegments: 32,
                       maxIOBytes: 1 << 20, hostID: Array(repeating: 7, count: 16), wantsWrite: true),
        ConnectRequest(kind: .block, name: "ro.vol", queueIndex: 3, queueDepth: 1, maxSegments: 1,
                       maxIOBytes: 4096, hostID: [], wantsWrite: false),
        ConnectRequest(kind: .packet, name: "lan0", queueIndex: 0, queueDepth: 256, maxSegments: 1,
                       maxIOBytes: 9100, hostID: [], wantsWrite: true, port: .named("vm1")),
        ConnectRequest(kind: .packet, name: "lan1", queueIndex: 1, queueDepth: 64, maxSegments: 1,
                       maxIOBytes: 1600, hostID: [], wantsWrite: true),
    ]

    /// Limits a capsule may be checked against.
    static let limits: [CommandLimits] = [
        CommandLimits(capacityBytes: 1 << 30, maxSegments: 32, maxIOBytes: 1 << 20, maxInlineBytes: 4096,
                      maxDiscardBytes: 1 << 30, maxWriteZeroesBytes: 1 << 30),
        CommandLimits(capacityBytes: 8192, maxSegments: 1, maxIOBytes: 4096, maxInlineBytes: 0,
                      maxDiscardBytes: 0, maxWriteZeroesBytes: 0),
        CommandLimits(capacityBytes: .max - 511, alignment: 4096, maxSegments: Wire.maxSegmentsLimit,
                      maxIOBytes: UInt32(Wire.maxIOLimit), maxInlineBytes: UInt32(Wire.maxInlineLimit),
                      maxDiscardBytes: .max, maxWriteZeroesBytes: .max),
    ]

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        switch Int(input.read(UInt8.self)) % decoders {
        case 0: connectRequest(Array(input.rest()))
        case 1:
            let r = requests[Int(input.read(UInt8.self)) % requests.count]
            if let g = try? BlockGeometry(decoding: Array(input.rest()), requested: r) {
                FuzzCheck.require(g.queueDepth >= 1 && g.queueDepth <= r.queueDepth, "granted depth above the request")
                FuzzCheck.require((try? BlockGeometry(decoding: g.encoded(), requested: r)) == g, "geometry round trip")
                _ = CommandLimits(geometry: g)
            }
        case 2:
            if let j = ConnectReject(decoding: Array(input.rest())) {
                FuzzCheck.require(j.message.utf8.count <= ConnectReject.maxMessage * 3, "reject message length")
                FuzzCheck.require(ConnectReject(decoding: j.encoded())?.reason == j.reason, "reject round trip")
            }
        case 3:
            let r = requests[Int(input.read(UInt8.self)) % requests.count]
            if let g = try? PacketGeometry(decoding: Array(input.rest()), requested: r) {
                FuzzCheck.require(g.maxFrameBytes <= r.maxIOBytes, "frames larger than the buffers")
                FuzzCheck.require((try? PacketGeometry(decoding: g.encoded(), requested: r)) == g, "packet geometry round trip")
            }
        case 4:
            let l = limits[Int(input.read(UInt8.self)) % limits.count]
            capsule(input.rest(), limits: l)
        case 5:
            let bytes = input.rest()
            if let base = bytes.baseAddress, let r = ResponseCapsule.read(base, byteCount: bytes.count) {
                FuzzCheck.require(bytes.count == Wire.responseSize, "response of the wrong size accepted")
                _ = r
            }
        case 6:
            let maxFrame = Int(input.read(UInt16.self))
            if let imm = PacketImmediate(rawValue: input.read(UInt32.self)) {
                FuzzCheck.require(PacketImmediate(rawValue: imm.rawValue) == imm, "immediate round trip")
            }
            frame(input.rest(), maxFrame: maxFrame)
        case 8:
            handshake(Int(input.read(UInt8.self)) % 3, input.rest())
        default:
            let named = input.read(UInt8.self) & 1 != 0
            if let k = PortKey(bytes: Array(input.rest()), named: named) {
                FuzzCheck.require(PortKey(bytes: k.bytes, named: named) == k, "port key round trip")
            }
        }
    }

    static func connectRequest(_ bytes: [UInt8]) {
        guard let r = try? ConnectRequest(decoding: bytes) else { return }
        FuzzCheck.require(ConnectRequest.isValidName(r.name), "decoded an invalid endpoint name")
        // Whatever decodes re-encodes to a request that decodes the same.
        guard let again = try? ConnectRequest(decoding: r.encoded()) else {
            FuzzCheck.require(false, "a decoded request does not re-encode")
            return
        }
        FuzzCheck.require(again.name == r.name && again.kind == r.kind && again.port == r.port
                          && again.wantsWrite == r.wantsWrite && again.queueDepth == r.queueDepth,
                          "connect request round trip")
    }

    /// The handshake's decoders: whatever decodes re-encodes to the same message.
    static func handshake(_ which: Int, _ bytes: UnsafeRawBufferPointer) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        defer { buffer.deallocate() }
        if let base = bytes.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
        let array = Array(bytes)
        switch which {
        case 0:
            guard let h = try? AuthHello(decoding: UnsafeRawPointer(buffer.baseAddress!), count: bytes.count) else { return }
            FuzzCheck.require(HandshakeName.isValid(h.hostName), "hello decoded an invalid host name")
            FuzzCheck.require((try? h.encoded()) == array, "hello round trip")
        case 1:
            guard let a = try? AcceptAuth(decoding: array) else { return }
            var again = Array(array.prefix(AcceptAuth.offset))
            FuzzCheck.require((try? a.write(into: &again)) != nil && (try? AcceptAuth(decoding: again)) == a, "accept handshake round trip")
        default:
            if case .result(let r) = AuthResult.read(array) {
                FuzzCheck.require(AuthResult.read(r.encoded()) == .result(r), "result round trip")
            }
        }
    }

    static func capsule(_ bytes: UnsafeRawBufferPointer, limits: CommandLimits) {
        // Received capsules sit in an exactly sized buffer (ASan sees any over-read).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyMemory(from: bytes)
        guard case .success(let c) = CommandCapsule.parse(UnsafeRawPointer(buffer.baseAddress!), byteCount: bytes.count,
                                                          limits: limits) else { return }
        var total: UInt64 = 0
        for i in 0..<c.segmentCount {
            let s = c.segment(i)
            FuzzCheck.require(s.length > 0, "empty segment accepted")
            total += UInt64(s.length)
        }
        FuzzCheck.require(c.inlineData.count == c.inlineLength, "inline data length")
        var sum = 0
        for b in c.inlineData { sum &+= Int(b) }
        _ = sum
        switch c.opcode {
        case .read, .write, .discard, .writeZeroes:
            let (end, o) = c.offset.addingReportingOverflow(UInt64(c.length))
            FuzzCheck.require(!o && end <= limits.capacityBytes && c.length > 0, "range outside the export accepted")
            if c.opcode == .read || (c.opcode == .write && !c.flags.contains(.inlineData)) {
                FuzzCheck.require(total == UInt64(c.length), "segments do not add up")
            }
        case .flush, .getID: break
        }
    }

    static func frame(_ bytes: UnsafeRawBufferPointer, maxFrame: Int) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        defer { buffer.deallocate() }
        buffer.copyMemory(from: bytes)
        if case .success(let s) = PacketFrame.validate(UnsafeRawPointer(buffer.baseAddress!), byteCount: bytes.count,
                                                       maxFrame: maxFrame) {
            FuzzCheck.require(bytes.count >= PacketFrame.minBytes && bytes.count <= maxFrame, "frame size accepted")
            FuzzCheck.require(!s.source.isMulticast && !s.source.isZero, "bad source accepted")
        }
    }

    static func seeds() -> [[UInt8]] {
        var out: [[UInt8]] = []
        for r in requests { if let b = try? r.encoded() { out.append([0] + b) } }
        let g = BlockGeometry(capacityBytes: 1 << 30, blockSize: 512, flags: [.flush, .discard], maxDiscardBytes: 1 << 20,
                              maxWriteZeroesBytes: 1 << 20, queueDepth: 64, maxSegments: 16, maxIOBytes: 1 << 20,
                              maxInlineBytes: 4096, optimalIOBytes: 4096)
        out.append([1, 0] + g.encoded())
        out.append([2] + ConnectReject(.noSuchEndpoint, "no export named vol9").encoded())
        out.append([3, 2] + PacketGeometry(mtu: 1500, receiveBuffers: 64, flags: PacketGeometry.flagPortJoined).encoded())
        out.append([3, 3] + PacketGeometry(mtu: 1500, receiveBuffers: 16).encoded())
        func cmd(_ limitIndex: UInt8, _ body: (UnsafeMutableRawPointer) -> Int) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 4096 + 64)
            let n = b.withUnsafeMutableBytes { body($0.baseAddress!) }
            return [4, limitIndex] + b[0..<n]
        }
        out.append(cmd(0) { p in
            var n = CommandWriter.writeHeader(p, opcode: .read, segmentCount: 2, tag: 1, offset: 4096, length: 8192)
            CommandWriter.setSegment(p, 0, WireSegment(address: 0x1000, length: 4096, rkey: 9))
            CommandWriter.setSegment(p, 1, WireSegment(address: 0x9000, length: 4096, rkey: 9))
            n += 2 * Wire.segmentSize
            return n
        })
        out.append(cmd(0) { p in
            let n = CommandWriter.writeHeader(p, opcode: .write, flags: .inlineData, segmentCount: 0, tag: 2,
                                              offset: 0, length: 512, inlineLength: 512)
            return n + 512
        })
        out.append(cmd(0) { p in CommandWriter.writeHeader(p, opcode: .flush, segmentCount: 0, tag: 3, offset: 0, length: 0) })
        out.append(cmd(0) { p in
            CommandWriter.writeHeader(p, opcode: .writeZeroes, flags: .unmap, segmentCount: 0, tag: 4, offset: 512, length: 1024)
        })
        out.append(cmd(0) { p in
            let n = CommandWriter.writeHeader(p, opcode: .getID, segmentCount: 1, tag: 5, offset: 0, length: 20)
            CommandWriter.setSegment(p, 0, WireSegment(address: 0x2000, length: 20, rkey: 1))
            return n + Wire.segmentSize
        })
        var resp = [UInt8](repeating: 0, count: Wire.responseSize)
        resp.withUnsafeMutableBytes { ResponseCapsule.write($0.baseAddress!, tag: 77, status: .outOfRange, value: 5) }
        out.append([5] + resp)
        var f: [UInt8] = [6]
        f += [0xec, 0x05]                                          // max frame 1518 + 12
        f += withUnsafeBytes(of: PacketImmediate.frame(credits: 3).littleEndian, Array.init)
        f += [UInt8](repeating: 0, count: Wire.netHeaderSize)
        f += [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06]
        f += [UInt8](repeating: 0xab, count: 28)
        out.append(f)
        if let hello = try? AuthHello(hostName: "compute-1", initiatorNonce: Array(0..<32), mailboxAddress: 0x7f00_1000,
                                      mailboxKey: 0x1234, proof: Array(repeating: 0xa5, count: 32)).encoded() {
            out.append([8, 0] + hello)
        }
        var accept = [UInt8](repeating: 0, count: AcceptAuth.offset)
        if (try? AcceptAuth(targetNonce: Array(32..<64), targetProves: true, targetName: "storage-1").write(into: &accept)) != nil {
            out.append([8, 1] + accept)
        }
        out.append([8, 2] + AuthResult(rejection: nil, proof: Array(repeating: 0x5a, count: 32)).encoded())
        out.append([8, 2] + AuthResult(rejection: .hostNotAllowed, proof: nil).encoded())
        out.append([7, 1] + PortKey.named("vm1-nic0").bytes)
        out.append([7, 0] + PortKey.anonymous(Array(0..<16)).bytes)
        return out
    }
}
