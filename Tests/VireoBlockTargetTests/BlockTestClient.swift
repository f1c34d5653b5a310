import VireoAuth
import VireoFabric
import VireoInitiator
import VireoSys
import VireoWire

/// A minimal initiator for the target's integration tests: one connection,
/// one registered data buffer standing in for guest memory, one command at a
/// time (or a few pipelined), answers awaited synchronously.
final class BlockTestClient {
    let connection: Connection
    let geometry: BlockGeometry
    let request: ConnectRequest
    /// "Guest memory": segments point into it.
    let data: RegisteredBuffer
    private let capsules: RegisteredBuffer
    private let responses: RegisteredBuffer
    private let completions = CompletionBuffer(capacity: 32)
    private let sendBatch = SendBatch(capacity: 1)
    private let receiveBatch = RecvBatch(capacity: 64)
    let depth: Int
    let capsuleSize: Int

    enum ConnectFailure: Error, CustomStringConvertible {
        case rejected(ConnectReject)
        case fabric(FabricError)
        case handshake(HandshakeFailure)
        var description: String {
            switch self {
            case .rejected(let r): return "rejected (\(r.reason)): \(r.message)"
            case .fabric(let e): return "\(e)"
            case .handshake(let f): return "\(f)"
            }
        }
    }

    /// Connects to `name` at `host:port` asking for the given limits, as host `hostName`
    /// (with `hostKey`, its secret); `authenticate: false` sends no hello.
    init(host: String, port: UInt16, name: String, depth: UInt16 = 16, segments: UInt16 = 16,
         maxIO: UInt32 = 1 << 20, wantsWrite: Bool = true, version: UInt8 = Wire.version,
         hostName: String = "test-host", hostKey: [UInt8]? = nil, authenticate: Bool = true, queueIndex: UInt16 = 0,
         dataBytes: Int = 8 << 20) throws(ConnectFailure) {
        var r = ConnectRequest(kind: .block, name: name, queueIndex: queueIndex, queueDepth: depth, maxSegments: segments,
                               maxIOBytes: maxIO, hostID: HandshakeTranscript.hostID(of: hostName), wantsWrite: wantsWrite)
        r.version = version
        request = r
        let pd: [UInt8]
        do { pd = try r.encoded() } catch { fatalError("\(error)") }
        let conn: Connection
        do {
            conn = try Connection.connect(
                to: FabricAddress(host: host, port: port),
                resources: ConnectionResources(queuePair: QueuePairConfig(sendDepth: 64, receiveDepth: 64)),
                privateData: pd)
        } catch {
            if case .rejected(_, let data) = error, let reject = ConnectReject(decoding: data) {
                throw .rejected(reject)
            }
            throw .fabric(error)
        }
        connection = conn
        // The hello first, as an initiator sends it (the target's deadline runs from the accept).
        if authenticate {
            do throws(HandshakeFailure) {
                var c = InitiatorCredentials(hostName: hostName)
                c.hostKey = hostKey.flatMap { HandshakeKey(secret: $0) }
                try HandshakeExchange.run(try InitiatorHandshake(credentials: c, request: pd, accept: conn.peerPrivateData),
                                          on: conn, timeoutMilliseconds: 10_000)
            } catch { throw .handshake(error) }
            // Its SEND completion, so that waitForSendCompletion sees only the commands'.
            let n = (try? conn.queuePair.sendCQ.wait(into: completions, spin: 10, timeoutMilliseconds: 10_000)) ?? 0
            if n == 0 { throw .fabric(.timedOut("the hello's send completion")) }
        }
        do {
            geometry = try BlockGeometry(decoding: conn.peerPrivateData, requested: r)
        } catch {
            fatalError("bad geometry: \(error)")
        }
        self.depth = min(Int(geometry.queueDepth), 64)
        capsuleSize = Wire.commandSize(segments: Int(geometry.maxSegments), inline: Int(geometry.maxInlineBytes))
        do {
            data = try RegisteredBuffer(pd: conn.pd, count: dataBytes, access: .all)
            capsules = try RegisteredBuffer(pd: conn.pd, count: max(capsuleSize, 4096) * 64, access: [.localWrite])
            responses = try RegisteredBuffer(pd: conn.pd, count: Wire.responseSize * 64, access: [.localWrite])
            for i in 0..<64 {
                receiveBatch.receive(wrId: UInt64(i), local: responses.region.segment(offset: i * 16, length: 16))
            }
            try conn.queuePair.post(receiveBatch)
        } catch let e as FabricError {
            throw .fabric(e)
        } catch {
            fatalError("\(error)")
        }
    }

    deinit { connection.disconnect() }

    /// A segment of the data buffer.
    func segment(_ offset: Int, _ length: Int) -> WireSegment {
        WireSegment(address: data.region.remoteAddress(offset: offset), length: UInt32(length), rkey: data.region.rkey)
    }

    /// `count` equal segments covering `[offset, offset+length)` of the data buffer.
    func segments(_ offset: Int, _ length: Int, count: Int) -> [WireSegment] {
        let each = length / count
        return (0..<count).map { i in segment(offset + i * each, i == count - 1 ? length - each * (count - 1) : each) }
    }

    /// Builds a capsule in slot `slot` of the capsule buffer; returns its size.
    func build(slot: Int = 0, _ opcode: BlockOpcode, flags: CommandFlags = [], tag: UInt32, offset: UInt64 = 0,
               length: UInt32 = 0, segments: [WireSegment] = [], inline: [UInt8] = []) -> Int {
        let p = capsules.bytes.baseAddress! + slot * max(capsuleSize, 4096)
        var n = CommandWriter.writeHeader(p, opcode: opcode, flags: flags, segmentCount: segments.count, tag: tag,
                                          offset: offset, length: length, inlineLength: inline.count)
        for (i, s) in segments.enumerated() { CommandWriter.setSegment(p, i, s) }
        n += segments.count * Wire.segmentSize
        inline.withUnsafeBytes { (p + n).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return n + inline.count
    }

    /// Raw bytes as a capsule (for malformed ones) in slot `slot`.
    func buildRaw(slot: Int = 0, _ bytes: [UInt8]) -> Int {
        let p = capsules.bytes.baseAddress! + slot * max(capsuleSize, 4096)
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return bytes.count
    }

    /// Sends the capsule in `slot` of `size` bytes.
    func send(slot: Int = 0, size: Int) throws(FabricError) {
        sendBatch.send(wrId: 1000 + UInt64(slot),
                       local: capsules.region.segment(offset: slot * max(capsuleSize, 4096), length: size), signaled: true)
        try connection.queuePair.post(sendBatch)
    }

    /// Waits for `count` responses; returns them in arrival order.
    func responses(_ count: Int, timeoutMilliseconds: Int32 = 30_000) throws(FabricError) -> [(tag: UInt32, status: BlockStatus, value: UInt64)] {
        var out: [(tag: UInt32, status: BlockStatus, value: UInt64)] = []
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while out.count < count {
            guard monotonicNanoseconds() < deadline else { throw .timedOut("waiting for \(count) responses") }
            let n = try connection.queuePair.receiveCQ.wait(into: completions, spin: 10, timeoutMilliseconds: 1000)
            for i in 0..<n { if let r = try take(completions[i]) { out.append(r) } }
        }
        return out
    }

    /// The response a completion carries (its receive buffer reposted), nil for a send completion.
    private func take(_ c: Completion) throws(FabricError) -> (tag: UInt32, status: BlockStatus, value: UInt64)? {
        guard c.isSuccess else { throw c.error }
        guard c.isReceive else { return nil }
        let slot = Int(c.wrId)
        guard let r = ResponseCapsule.read(responses.bytes.baseAddress! + slot * 16, byteCount: Int(c.byteLength)) else {
            throw .timedOut("malformed response")
        }
        receiveBatch.receive(wrId: UInt64(slot), local: responses.region.segment(offset: slot * 16, length: 16))
        try connection.queuePair.post(receiveBatch)
        return r
    }

    /// The responses already arrived, without waiting.
    func pollResponses() throws(FabricError) -> [(tag: UInt32, status: BlockStatus, value: UInt64)] {
        var out: [(tag: UInt32, status: BlockStatus, value: UInt64)] = []
        while true {
            let n = try connection.queuePair.receiveCQ.poll(into: completions)
            if n == 0 { return out }
            for i in 0..<n { if let r = try take(completions[i]) { out.append(r) } }
        }
    }

    /// Waits for a SEND's completion (the target acknowledged the capsule); responses seen meanwhile are dropped.
    func waitForSendCompletion(timeoutMilliseconds: Int32 = 30_000) throws(FabricError) {
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while monotonicNanoseconds() < deadline {
            let n = try connection.queuePair.sendCQ.wait(into: completions, spin: 10, timeoutMilliseconds: 1000)
            for i in 0..<n where !completions[i].isReceive {
                guard completions[i].isSuccess else { throw completions[i].error }
                return
            }
        }
        throw .timedOut("waiting for a send completion")
    }

    /// One command, answered.
    func run(_ opcode: BlockOpcode, flags: CommandFlags = [], tag: UInt32 = 1, offset: UInt64 = 0, length: UInt32 = 0,
             segments: [WireSegment] = [], inline: [UInt8] = []) throws(FabricError) -> BlockStatus {
        let n = build(opcode, flags: flags, tag: tag, offset: offset, length: length, segments: segments, inline: inline)
        try send(size: n)
        let r = try responses(1)
        guard r[0].tag == tag else { throw .timedOut("response for tag \(r[0].tag), expected \(tag)") }
        return r[0].status
    }

    /// Raw capsule bytes, answered.
    func runRaw(_ bytes: [UInt8]) throws(FabricError) -> (tag: UInt32, status: BlockStatus, value: UInt64) {
        try send(size: buildRaw(bytes))
        return try responses(1)[0]
    }
}
