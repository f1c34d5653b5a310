import CVireoVerbs
import CVireoSys
import Logging
import VireoSys
import Synchronization

/// Serves fabric probes: lends each client a registered buffer for RDMA
/// READ/WRITE, echoes ping-pong messages and answers checksum requests.
/// Each connection runs on its own OS thread.
public final class FabricProbeServer: @unchecked Sendable {
    // SAFETY: `listener` is used only by the accept thread; `stopping` is an atomic flag.
    private let listener: Listener
    private let logger: Logger
    private let busyPoll: Bool
    private let stopFlag = EventFlag()
    private var acceptThread: OSThread?

    /// Listens on `address` (port 0 picks one).
    public init(address: FabricAddress, busyPoll: Bool = false, logger: Logger = Logger(label: "vireo.probe")) throws(FabricError) {
        listener = try Listener(address: address)
        self.logger = logger
        self.busyPoll = busyPoll
    }

    /// The bound port.
    public var port: UInt16 { listener.port }

    /// Accepts and serves up to `maxConnections` clients (nil: until `stop`), each on its own thread.
    /// Returns after the accept loop ends and every session finished.
    public func serve(maxConnections: Int? = nil) {
        var sessions: [OSThread] = []
        var served = 0
        while !stopFlag.isSet, maxConnections.map({ served < $0 }) ?? true {
            let request: ConnectionRequest?
            do { request = try listener.nextRequest(timeoutMilliseconds: 200) } catch {
                logger.error("probe listener failed: \(error)")
                break
            }
            guard let request else { continue }
            served += 1
            switch FabricProbe.parseRequest(request.privateData) {
            case .failure(let reject):
                logger.warning("rejecting \(request.peerAddress): \(reject.reason)")
                try? request.reject(privateData: Array(reject.reason.utf8.prefix(PrivateDataLimit.reject)))
                continue
            case .success(let size):
                do {
                    let session = try ProbeSession(request: request, bufferSize: size, busyPoll: busyPoll,
                                                   stop: stopFlag, logger: logger)
                    sessions.append(try OSThread(name: "probe-session") { session.run() })
                } catch {
                    logger.error("probe session from \(request.peerAddress) failed: \(error)")
                }
            }
        }
        for t in sessions { t.join() }
    }

    /// Starts `serve` on a background OS thread.
    public func start(maxConnections: Int? = nil) throws(SystemError) {
        acceptThread = try OSThread(name: "probe-accept") { [self] in serve(maxConnections: maxConnections) }
    }

    /// Stops accepting, ends sessions, and joins the threads.
    public func stop() {
        stopFlag.set()
        acceptThread?.join()
    }

    /// Waits for a `start`ed server to finish on its own.
    public func join() { acceptThread?.join() }
}

/// A one-way flag set from one thread and polled from others.
final class EventFlag: Sendable {
    private let word = Atomic<Bool>(false)
    init() {}
    func set() { word.store(true, ordering: .releasing) }
    var isSet: Bool { word.load(ordering: .acquiring) }
}

/// One probe client's session on the server.
final class ProbeSession: @unchecked Sendable {
    // SAFETY: after init, used only by its own session thread.
    let connection: Connection
    let buffer: RegisteredBuffer
    let messages: RegisteredBuffer
    let busyPoll: Bool
    let stop: EventFlag
    let logger: Logger

    init(request: ConnectionRequest, bufferSize: Int, busyPoll: Bool, stop: EventFlag, logger: Logger) throws(FabricError) {
        guard let ctx = request.context else { throw .noDevice("request on no device") }
        let pd = try ProtectionDomain.shared(for: ctx)
        buffer = try RegisteredBuffer(pd: pd, count: bufferSize)
        messages = try RegisteredBuffer(pd: pd, count: FabricProbe.maxMessage * FabricProbe.slots, access: .localWrite)
        let config = QueuePairConfig(sendDepth: FabricProbe.slots * 2, receiveDepth: FabricProbe.slots)
        connection = try request.accept(
            resources: ConnectionResources(pd: pd, queuePair: config),
            privateData: FabricProbe.accept(address: buffer.region.remoteAddress(offset: 0),
                                            length: bufferSize, rkey: buffer.region.rkey))
        self.busyPoll = busyPoll
        self.stop = stop
        self.logger = logger
    }

    func slot(_ i: Int) -> ScatterGatherElement {
        messages.region.segment(offset: i * FabricProbe.maxMessage, length: FabricProbe.maxMessage)
    }

    func run() {
        do { try loop() } catch .disconnected {
            logger.info("probe session \(connection.peerAddress) ended: client disconnected")
        } catch { logger.warning("probe session \(connection.peerAddress) ended: \(error)") }
        connection.disconnect(timeoutMilliseconds: 200)
    }

    private func loop() throws(FabricError) {
        let qp = connection.queuePair
        let recvs = RecvBatch(capacity: FabricProbe.slots)
        let sends = SendBatch(capacity: FabricProbe.slots)
        let wc = CompletionBuffer(capacity: 32)
        for i in 0..<FabricProbe.slots { recvs.receive(wrId: UInt64(i), local: slot(i)) }
        try qp.post(recvs)
        let sendTag: UInt64 = 1 << 32
        var idle = 0
        while !stop.isSet {
            let n = try qp.receiveCQ.wait(into: wc, spin: busyPoll ? 100_000 : 200, timeoutMilliseconds: 100)
            if n == 0 {
                idle += 1
                if idle % 5 == 0, let ev = try connection.pollEvent() { throw ev }
                continue
            }
            idle = 0
            for i in 0..<n {
                let c = wc[i]
                guard c.isSuccess else {
                    if c.status == .flushed { throw .disconnected }
                    throw c.error
                }
                if c.wrId & sendTag != 0 {
                    // Echo sent: the slot is free for the next receive.
                    let s = Int(c.wrId & 0xffff_ffff)
                    recvs.receive(wrId: UInt64(s), local: slot(s))
                    continue
                }
                let s = Int(c.wrId)
                guard s < FabricProbe.slots else { continue }
                let len = Int(c.byteLength)
                let base = messages.region.address + s * FabricProbe.maxMessage
                if len >= 9, base.load(fromByteOffset: 8, as: UInt8.self) == FabricProbe.kindChecksum {
                    let sum = checksum64(UnsafeRawBufferPointer(buffer.bytes))
                    base.storeBytes(of: sum.littleEndian, toByteOffset: 8, as: UInt64.self)
                    sends.send(wrId: sendTag | UInt64(s), local: messages.region.segment(
                        offset: s * FabricProbe.maxMessage, length: 16))
                } else {
                    sends.send(wrId: sendTag | UInt64(s), local: messages.region.segment(
                        offset: s * FabricProbe.maxMessage, length: len))
                }
            }
            try qp.post(sends)
            try qp.post(recvs)
        }
    }
}
