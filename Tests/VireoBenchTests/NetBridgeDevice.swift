import Synchronization
import VhostUser
import Virtio
import VireoSys

/// Test-only: one end of a virtual cable between two vhost-user virtio-net
/// devices (each behind its own `VhostUserServer`). A frame transmitted on
/// one end is copied into the other end's inbox and delivered into the next
/// RX chain the other end's guest posted (frames wait in the inbox, up to
/// `inboxCapacity`, then are dropped). Link up, MTU 1500, MAC from init.
///
/// Queues: RX 0, TX 1, control 2 (unused), all on one worker. RX chains are
/// popped by the worker and held until a frame fills them.
final class NetBridgeDevice: VhostUserDevice, @unchecked Sendable {
    // SAFETY (Sendable): `held` is touched by this device's worker only (and
    // by the control thread while the worker is parked); the inbox is a `Locked`;
    // counters are atomic.

    let mac: [UInt8]
    let mtu: UInt16
    weak var peer: NetBridgeDevice?
    private let inbox = Locked<[[UInt8]]>([])
    private let inboxCapacity: Int
    private let wake: EventFD
    private var held: [VhostUserQueueRequest] = []
    let framesTransmitted = Atomic<UInt64>(0)
    let framesDelivered = Atomic<UInt64>(0)
    let framesDropped = Atomic<UInt64>(0)

    init(mac: [UInt8], mtu: UInt16 = 1500, inboxCapacity: Int = 512) throws {
        self.mac = mac
        self.mtu = mtu
        self.inboxCapacity = inboxCapacity
        wake = try EventFD()
    }

    /// Connects two ends.
    static func cable(_ a: NetBridgeDevice, _ b: NetBridgeDevice) {
        a.peer = b
        b.peer = a
    }

    var deviceType: VirtioDeviceType { .net }
    var queueCount: Int { 3 }
    var maxQueueSize: UInt16 { 1024 }
    var features: UInt64 {
        VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioNet.Feature.mac | VirtioNet.Feature.mtu
            | VirtioNet.Feature.status | VirtioNet.Feature.mergeableRxBuffers
    }
    var protocolFeatures: VhostUserProtocolFeatures {
        [.mq, .replyAck, .mtu, .config, .resetDevice, .configureMemSlots, .status]
    }
    func worker(forQueue q: Int) -> Int { 0 }

    func configSpace() -> [UInt8] {
        var c = VirtioNetConfig(mac: mac)
        c.status = VirtioNetConfig.statusLinkUp
        c.mtu = mtu
        return c.serialize()
    }

    func setMTU(_ value: UInt64) throws(VhostUserProtocolError) {}

    func handle(_ request: VhostUserQueueRequest) {
        switch request.queueIndex {
        case 0:
            held.append(request)
        case 1:
            framesTransmitted.add(1, ordering: .relaxed)
            let chain = request.chain
            let header = UInt32(VirtioNet.Header.size)
            if chain.readableBytes > header, let peer {
                var frame = [UInt8](repeating: 0, count: Int(chain.readableBytes - header))
                _ = frame.withUnsafeMutableBytes { chain.copyReadable(from: header, into: $0) }
                peer.accept(frame)
            } else {
                framesDropped.add(1, ordering: .relaxed)
            }
            request.complete(writtenLength: 0)
        default:
            request.complete(writtenLength: 0)
        }
    }

    /// A frame from the other end (its worker thread).
    private func accept(_ frame: [UInt8]) {
        let queued = inbox.withLock { q -> Bool in
            guard q.count < inboxCapacity else { return false }
            q.append(frame)
            return true
        }
        if queued { wake.signal() } else { framesDropped.add(1, ordering: .relaxed) }
    }

    func poll(worker: Int) -> Int {
        var done = 0
        while !held.isEmpty {
            guard let frame = inbox.withLock({ q -> [UInt8]? in q.isEmpty ? nil : q.removeFirst() }) else { break }
            let rx = held.removeFirst()
            var header = [UInt8](repeating: 0, count: VirtioNet.Header.size)
            header[10] = 1  // num_buffers
            let total = UInt32(header.count + frame.count)
            guard rx.chain.writableBytes >= total else {
                framesDropped.add(1, ordering: .relaxed)
                rx.complete(writtenLength: 0)
                continue
            }
            _ = header.withUnsafeBytes { rx.chain.copyToWritable(at: 0, from: $0) }
            _ = frame.withUnsafeBytes { rx.chain.copyToWritable(at: UInt32(header.count), from: $0) }
            rx.complete(writtenLength: total)
            framesDelivered.add(1, ordering: .relaxed)
            done += 1
        }
        return done
    }

    func wakeDescriptors(worker: Int) -> [Int32] { [wake.rawValue] }

    func prepareToSleep(worker: Int) -> Bool {
        wake.drain()
        return !held.isEmpty && inbox.withLock { !$0.isEmpty }
    }

    func willPark(worker: Int) {
        for r in held { r.complete(writtenLength: 0) }
        held.removeAll()
    }

    func connectionClosed() { held.removeAll() }
}
