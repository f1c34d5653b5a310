import Foundation
import VireoFabric
import VireoSys
import VireoWire
import VireoTestSupport

/// A minimal in-test packet target: one listener, one connection at a time,
/// speaking the packet protocol with a credit window the test controls.
final class PacketPeer: @unchecked Sendable {
    // SAFETY (Sendable): `acceptInBackground` hands the connection over; the
    // test thread uses it only after `waitForConnection`.
    let listener: Listener
    let advertised: UInt16
    private let frameSize = 2048
    private let postedCount: Int
    private var connection: Connection?
    private var receives: RegisteredBuffer?
    private var sends: RegisteredBuffer?
    private let completions = CompletionBuffer(capacity: 32)
    private let sendBatch = SendBatch(capacity: 1)
    private let recvBatch = RecvBatch(capacity: 64)
    private var sendSlot = 0
    private var accepted = DispatchSemaphore(value: 0)
    /// What the initiator asked for on the last connection.
    private(set) var request: ConnectRequest?
    /// Frames we may send to the initiator.
    private(set) var credits = 0
    private(set) var frames: [[UInt8]] = []
    private(set) var creditMessages = 0
    private(set) var immediates: [PacketImmediate] = []

    /// `advertised` receive buffers granted in the geometry; four more are posted for credit messages.
    init(host: String, advertised: UInt16) throws {
        listener = try Listener(address: FabricAddress(host: host, port: 0))
        self.advertised = advertised
        postedCount = Int(advertised) + 4
    }

    var port: UInt16 { listener.port }

    /// Accepts the next connection on a background thread.
    func acceptInBackground() {
        accepted = DispatchSemaphore(value: 0)
        let sem = accepted
        Thread.detachNewThread { [self] in
            defer { sem.signal() }
            guard let req = try? listener.nextRequest(timeoutMilliseconds: 20_000),
                  let r = try? ConnectRequest(decoding: req.privateData) else { return }
            let qp = QueuePairConfig(sendDepth: 64, receiveDepth: 64, maxSendSegments: 1, maxReceiveSegments: 1)
            let accept = TestTargetHandshake.accept(PacketGeometry(mtu: 1500, receiveBuffers: advertised).encoded())
            guard let conn = try? req.accept(resources: ConnectionResources(queuePair: qp), privateData: accept),
                  (try? TestTargetHandshake.answer(on: conn, request: req.privateData, accept: accept)) != nil
            else { return }
            let recv = try! RegisteredBuffer(pd: conn.pd, count: postedCount * frameSize, access: [.localWrite])
            let snd = try! RegisteredBuffer(pd: conn.pd, count: 16 * frameSize, access: [.localWrite])
            for i in 0..<postedCount {
                recvBatch.receive(wrId: UInt64(i), local: recv.region.segment(offset: i * frameSize, length: frameSize))
            }
            try! conn.queuePair.post(recvBatch)
            receives = recv
            sends = snd
            request = r
            credits = Int(r.queueDepth)
            frames = []
            connection = conn
        }
    }

    func waitForConnection(seconds: Int = 20) -> Bool {
        accepted.wait(timeout: .now() + .seconds(seconds)) == .success && connection != nil
    }

    /// Drops the connection (the initiator sees DISCONNECTED).
    func disconnect() {
        connection?.disconnect(timeoutMilliseconds: 500)
        connection = nil
    }

    /// Polls for `milliseconds`, collecting frames and credits. Buffers are
    /// NOT reposted until `returnCredits` (so the test controls the window).
    func pump(milliseconds: Int) {
        guard let conn = connection else { return }
        let deadline = monotonicNanoseconds() &+ UInt64(milliseconds) * 1_000_000
        repeat {
            let n = try! conn.queuePair.receiveCQ.poll(into: completions)
            for i in 0..<n {
                let c = completions[i]
                precondition(c.isSuccess, "peer completion failed: \(c.error)")
                guard c.isReceive else { continue }
                let imm = PacketImmediate(rawValue: c.immediate)!
                immediates.append(imm)
                credits += Int(imm.credits)
                let idx = Int(c.wrId)
                if imm.kind == .credit {
                    creditMessages += 1
                    repost(idx)         // credit messages never use the window
                } else {
                    let p = receives!.bytes.baseAddress! + idx * frameSize
                    frames.append(Array(UnsafeRawBufferPointer(start: p, count: Int(c.byteLength))))
                    consumed.append(idx)
                }
            }
            if n == 0 { usleep(500) }
        } while monotonicNanoseconds() < deadline
    }

    private var consumed: [Int] = []

    private func repost(_ idx: Int) {
        recvBatch.receive(wrId: UInt64(idx), local: receives!.region.segment(offset: idx * frameSize, length: frameSize))
        try! connection!.queuePair.post(recvBatch)
    }

    /// Reposts the buffers frames used and grants `count` credits in a credit-only message.
    func returnCredits(_ count: UInt16) {
        for i in consumed { repost(i) }
        consumed = []
        send(payload: nil, immediate: PacketImmediate.credit(count))
    }

    /// Sends a frame (uses one initiator credit).
    func sendFrame(_ bytes: [UInt8]) {
        precondition(credits > 0, "peer has no credit")
        credits -= 1
        send(payload: bytes, immediate: PacketImmediate.frame(credits: 0))
    }

    /// Sends a credit-only message granting nothing (it still lands in an initiator buffer).
    func sendEmptyCreditMessage() { send(payload: nil, immediate: PacketImmediate.credit(0)) }

    private func send(payload: [UInt8]?, immediate: UInt32) {
        guard let conn = connection, let sends else { return }
        let slot = sendSlot % 16
        sendSlot += 1
        var sge: ScatterGatherElement?
        if let payload {
            payload.withUnsafeBytes { sends.bytes.baseAddress!.advanced(by: slot * frameSize).copyMemory(from: $0.baseAddress!, byteCount: payload.count) }
            sge = sends.region.segment(offset: slot * frameSize, length: payload.count)
        }
        sendBatch.send(wrId: UInt64(1) << 40, local: sge, immediate: immediate)
        try! conn.queuePair.post(sendBatch)
    }
}
