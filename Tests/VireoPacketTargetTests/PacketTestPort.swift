import VireoAuth
import VireoFabric
import VireoInitiator
import VireoSys
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// A minimal packet initiator for the lab tests: one connection speaking the
/// packet wire protocol, `posted` receive buffers, credits tracked both ways.
final class PacketTestPort {
    let connection: Connection
    let geometry: PacketGeometry
    let request: ConnectRequest
    let frameSize: Int
    private let receives: RegisteredBuffer
    private let sends: RegisteredBuffer
    private let completions = CompletionBuffer(capacity: 32)
    private let sendBatch = SendBatch(capacity: 1)
    private let receiveBatch = RecvBatch(capacity: 64)
    private var sendSlot = 0
    /// Frames we may still send to the target.
    private(set) var credits: Int
    /// Buffers reposted since our last message.
    private var newlyPosted = 0
    private(set) var creditMessages = 0
    let receiveCount: Int

    enum ConnectFailure: Error { case rejected(ConnectReject), fabric(FabricError), handshake(HandshakeFailure) }

    /// Joins `network` as host `hostName` (its hello sent and accepted before this returns).
    init(host: String, port: UInt16, network: String, receiveBuffers: Int = 32, maxFrame: UInt32 = 1530,
         queueIndex: UInt16 = 0, hostName: String = "test-host") throws(ConnectFailure) {
        let r = ConnectRequest(kind: .packet, name: network, queueIndex: queueIndex, queueDepth: UInt16(receiveBuffers),
                               maxSegments: 1, maxIOBytes: maxFrame, hostID: HandshakeTranscript.hostID(of: hostName),
                               wantsWrite: false)
        request = r
        frameSize = Int(maxFrame)
        receiveCount = receiveBuffers
        let conn: Connection
        do {
            conn = try Connection.connect(
                to: FabricAddress(host: host, port: port),
                resources: ConnectionResources(queuePair: QueuePairConfig(sendDepth: 64, receiveDepth: 64)),
                privateData: try! r.encoded())
        } catch {
            if case .rejected(_, let data) = error, let reject = ConnectReject(decoding: data) { throw .rejected(reject) }
            throw .fabric(error)
        }
        connection = conn
        do { geometry = try PacketGeometry(decoding: conn.peerPrivateData, requested: r) } catch { fatalError("\(error)") }
        credits = Int(geometry.receiveBuffers)
        do {
            receives = try RegisteredBuffer(pd: conn.pd, count: max(receiveBuffers, 1) * frameSize, access: [.localWrite])
            sends = try RegisteredBuffer(pd: conn.pd, count: 16 * frameSize, access: [.localWrite])
        } catch { throw .fabric(error) }
        for i in 0..<receiveBuffers { post(i) }
        newlyPosted = 0  // the initial ones are the connect request's queue depth
        do throws(HandshakeFailure) {
            let h = try InitiatorHandshake(credentials: InitiatorCredentials(hostName: hostName), request: try! r.encoded(),
                                           accept: conn.peerPrivateData)
            try HandshakeExchange.run(h, on: conn, timeoutMilliseconds: 10_000)
        } catch { throw .handshake(error) }
    }

    private func post(_ i: Int) {
        receiveBatch.receive(wrId: UInt64(i), local: receives.region.segment(offset: i * frameSize, length: frameSize))
        try! connection.queuePair.post(receiveBatch)
        newlyPosted += 1
    }

    /// Builds a frame: zero virtio header + Ethernet header + payload.
    static func frame(dst: MACAddress, src: MACAddress, payload: [UInt8], etherType: UInt16 = 0x88b5) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 12 + 14 + payload.count)
        b.withUnsafeMutableBytes { raw in
            dst.store(to: raw.baseAddress!, offset: 12)
            src.store(to: raw.baseAddress!, offset: 18)
            raw.storeBytes(of: etherType.bigEndian, toByteOffset: 24, as: UInt16.self)
        }
        b.replaceSubrange(26..., with: payload)
        return b
    }

    /// SENDs raw bytes as a frame (consumes a credit; returns false without one).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        guard credits > 0 else { return false }
        drainSendCompletions()
        let slot = sendSlot % 16
        sendSlot += 1
        bytes.withUnsafeBytes { memcpy(sends.bytes.baseAddress! + slot * frameSize, $0.baseAddress!, bytes.count) }
        sendBatch.send(wrId: 1 << 32, local: sends.region.segment(offset: slot * frameSize, length: bytes.count),
                       immediate: PacketImmediate.frame(credits: UInt16(newlyPosted)))
        newlyPosted = 0
        credits -= 1
        try! connection.queuePair.post(sendBatch)
        return true
    }

    private var pendingFrames: [[UInt8]] = []

    private func drainSendCompletions() { pump(timeoutMilliseconds: 0) }

    /// Polls completions for up to `timeoutMilliseconds`, collecting frames and credits.
    private func pump(timeoutMilliseconds: Int) {
        let deadline = monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        repeat {
            let n = try! connection.queuePair.receiveCQ.poll(into: completions)
            for i in 0..<n {
                let c = completions[i]
                precondition(c.isSuccess, "completion failed: \(c.error)")
                guard c.isReceive else { continue }
                let idx = Int(c.wrId)
                let imm = PacketImmediate(rawValue: c.immediate)!
                precondition(c.hasImmediate)
                credits += Int(imm.credits)
                if imm.kind == .credit {
                    creditMessages += 1
                } else {
                    let p = receives.bytes.baseAddress! + idx * frameSize
                    pendingFrames.append(Array(UnsafeRawBufferPointer(start: p, count: Int(c.byteLength))))
                }
                post(idx)
            }
            if n == 0 && !pendingFrames.isEmpty { return }
            if n == 0 { usleep(200) }
        } while monotonicNanoseconds() < deadline
    }

    /// The next frame received within `timeoutMilliseconds`, or nil.
    func receive(timeoutMilliseconds: Int = 3000) -> [UInt8]? {
        if pendingFrames.isEmpty { pump(timeoutMilliseconds: timeoutMilliseconds) }
        return pendingFrames.isEmpty ? nil : pendingFrames.removeFirst()
    }

    /// Sends a credit-only message returning what we reposted.
    func returnCredits() {
        sendBatch.send(wrId: 2 << 32, local: nil, immediate: PacketImmediate.credit(UInt16(newlyPosted)))
        newlyPosted = 0
        try! connection.queuePair.post(sendBatch)
    }

    /// Waits until we hold at least `n` credits (the target returns them).
    func waitForCredits(_ n: Int, timeoutMilliseconds: Int = 3000) -> Bool {
        let deadline = monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        while credits < n && monotonicNanoseconds() < deadline { pump(timeoutMilliseconds: 5) }
        return credits >= n
    }
}
