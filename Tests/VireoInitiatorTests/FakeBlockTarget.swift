import Foundation
import Synchronization
import VireoFabric
import VireoSys
import VireoWire
import VireoTestSupport

/// A hostile block target for the initiator's tests: it accepts every
/// connection, grants what the test says, and answers each connection's
/// commands the way the plan says (wrong tags, short or duplicate responses,
/// an unknown status, or silence). Connection k follows `plan[k]` (the last
/// entry repeats).
final class FakeBlockTarget: @unchecked Sendable {
    // SAFETY (Sendable): the serving thread owns the connection state; the
    // test reads only the atomics and `port`.

    enum Behaviour: Sendable {
        /// A correct OK response.
        case answer
        /// A response naming a tag that is not in flight.
        case wrongTag
        /// The OK response, then the same again.
        case duplicate
        /// An 8-byte response.
        case shortResponse
        /// A response with a status byte no protocol version defines.
        case unknownStatus
        /// Never answer.
        case silent
    }

    let listener: Listener
    private let plan: [Behaviour]
    private let grants: [UInt16]
    /// Connections accepted so far.
    let connections = Atomic<Int>(0)
    /// Commands received so far.
    let commands = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: Thread?
    private static let bufferSize = 8192
    private static let buffers = 32

    /// `grants[k]`: segments granted to connection k (the last repeats).
    init(host: String, plan: [Behaviour], grants: [UInt16] = [8]) throws {
        listener = try Listener(address: FabricAddress(host: host, port: 0))
        self.plan = plan
        self.grants = grants
        let t = Thread { [self] in serve() }
        thread = t
        t.start()
    }

    var port: UInt16 { listener.port }

    func stop() { stopping.store(true, ordering: .releasing) }

    private func serve() {
        var conn: Connection?
        var recv: RegisteredBuffer?
        var send: RegisteredBuffer?
        var behaviour = Behaviour.answer
        let completions = CompletionBuffer(capacity: 32)
        let recvBatch = RecvBatch(capacity: Self.buffers)
        let sendBatch = SendBatch(capacity: 4)
        var sendSlot = 0
        while !stopping.load(ordering: .acquiring) {
            if let req = try? listener.nextRequest(timeoutMilliseconds: conn == nil ? 50 : 0),
               let r = try? ConnectRequest(decoding: req.privateData) {
                let k = connections.load(ordering: .relaxed)
                let segments = min(grants[min(k, grants.count - 1)], r.maxSegments)
                let g = BlockGeometry(capacityBytes: 1 << 30, blockSize: 512, flags: [.flush], maxDiscardBytes: 0,
                                      maxWriteZeroesBytes: 0, queueDepth: r.queueDepth, maxSegments: segments,
                                      maxIOBytes: r.maxIOBytes, maxInlineBytes: 0, optimalIOBytes: 4096)
                let qp = QueuePairConfig(sendDepth: 64, receiveDepth: Self.buffers, maxSendSegments: 1, maxReceiveSegments: 1)
                conn?.disconnect(timeoutMilliseconds: 100)
                let accept = TestTargetHandshake.accept(g.encoded())
                conn = try? req.accept(resources: ConnectionResources(queuePair: qp), privateData: accept)
                guard let c = conn, (try? TestTargetHandshake.answer(on: c, request: req.privateData, accept: accept)) != nil else {
                    conn?.disconnect(timeoutMilliseconds: 100)
                    conn = nil
                    continue
                }
                recv = try? RegisteredBuffer(pd: c.pd, count: Self.buffers * Self.bufferSize, access: [.localWrite])
                send = try? RegisteredBuffer(pd: c.pd, count: 4 * Wire.responseSize, access: [.localWrite])
                for i in 0..<Self.buffers {
                    recvBatch.receive(wrId: UInt64(i), local: recv!.region.segment(offset: i * Self.bufferSize, length: Self.bufferSize))
                }
                try? c.queuePair.post(recvBatch)
                behaviour = plan[min(k, plan.count - 1)]
                connections.add(1, ordering: .releasing)
            }
            guard let c = conn, let recv, let send else { continue }
            guard let n = try? c.queuePair.receiveCQ.poll(into: completions), n > 0 else {
                usleep(200)
                continue
            }
            for i in 0..<n {
                let wc = completions[i]
                guard wc.isSuccess, wc.isReceive else { continue }
                commands.add(1, ordering: .relaxed)
                let idx = Int(wc.wrId)
                let tag = (recv.bytes.baseAddress! + idx * Self.bufferSize + 4).loadUnaligned(as: UInt32.self)
                func respond(tag: UInt32, status: BlockStatus = .ok, bytes: Int = Wire.responseSize, raw: UInt8? = nil) {
                    let slot = sendSlot % 4
                    sendSlot += 1
                    let p = send.bytes.baseAddress! + slot * Wire.responseSize
                    ResponseCapsule.write(p, tag: tag, status: status)
                    if let raw { p.storeBytes(of: raw, toByteOffset: 4, as: UInt8.self) }
                    sendBatch.send(wrId: UInt64(1) << 40, local: send.region.segment(offset: slot * Wire.responseSize, length: bytes))
                    try? c.queuePair.post(sendBatch)
                }
                switch behaviour {
                case .answer: respond(tag: tag)
                case .wrongTag: respond(tag: tag &+ 1000)
                case .duplicate: respond(tag: tag); respond(tag: tag)
                case .shortResponse: respond(tag: tag, bytes: 8)
                case .unknownStatus: respond(tag: tag, raw: 0xee)
                case .silent: break
                }
                recvBatch.receive(wrId: UInt64(idx), local: recv.region.segment(offset: idx * Self.bufferSize, length: Self.bufferSize))
                try? c.queuePair.post(recvBatch)
            }
        }
        conn?.disconnect(timeoutMilliseconds: 100)
    }
}
