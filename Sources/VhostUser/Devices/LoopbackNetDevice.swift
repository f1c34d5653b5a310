import Synchronization
import Virtio

/// A virtio-net device that loops transmitted frames back to the guest (or
/// drops them): the stand-in until the RDMA-backed NIC exists. Link is up.
///
/// Queues: RX/TX pairs (RX = 2k, TX = 2k+1), then the control queue when
/// CTRL_VQ is offered (QEMU and DPDK virtio-user usually handle the control
/// queue themselves; the device acks every command if it is given one).
/// A pair lives on one worker; RX chains are taken only when a frame is
/// echoed, so no RX buffer is ever held by the device.
public final class LoopbackNetDevice: VhostUserDevice, @unchecked Sendable {
    // SAFETY (Sendable): configuration is immutable; counters are atomic.

    private static let headerSize = UInt32(VirtioNet.Header.size)

    /// What happens to a transmitted frame.
    public enum Mode: Sendable { case echo, drop }

    public let mac: [UInt8]
    public let queuePairs: Int
    public let ctrlQueue: Bool
    public let mode: Mode
    public let maxQueueSize: UInt16
    public let workerCount: Int
    private let mtuValue = Atomic<UInt16>(1500)
    /// Frames transmitted by the guest.
    public let framesTransmitted = Atomic<UInt64>(0)
    /// Frames delivered back on an RX queue.
    public let framesEchoed = Atomic<UInt64>(0)
    /// Frames dropped (drop mode, no RX buffer, too short).
    public let framesDropped = Atomic<UInt64>(0)
    /// RARP announcements requested (SEND_RARP).
    public let rarpRequests = Atomic<UInt64>(0)

    public init(mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], queuePairs: Int = 1, ctrlQueue: Bool = true,
                mode: Mode = .echo, mtu: UInt16 = 1500, maxQueueSize: UInt16 = 1024, workerCount: Int = 1) {
        precondition(mac.count == 6)
        self.mac = mac
        self.queuePairs = max(1, queuePairs)
        self.ctrlQueue = ctrlQueue
        self.mode = mode
        self.maxQueueSize = maxQueueSize
        self.workerCount = max(1, workerCount)
        mtuValue.store(mtu, ordering: .relaxed)
    }

    public var deviceType: VirtioDeviceType { .net }
    public var queueCount: Int { 2 * queuePairs + (ctrlQueue ? 1 : 0) }
    public var features: UInt64 {
        VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc | VirtioFeatures.ringPacked
            | VirtioNet.Feature.mac | VirtioNet.Feature.mtu | VirtioNet.Feature.status | VirtioNet.Feature.mergeableRxBuffers
            | (ctrlQueue ? VirtioNet.Feature.ctrlVQ : 0) | (queuePairs > 1 ? VirtioNet.Feature.multiqueue : 0)
    }
    public var protocolFeatures: VhostUserProtocolFeatures {
        [.mq, .logSHMFD, .rarp, .replyAck, .mtu, .backendReq, .config, .resetDevice, .configureMemSlots, .status]
    }
    /// The MTU (config space; NET_SET_MTU updates it).
    public var mtu: UInt16 { mtuValue.load(ordering: .relaxed) }

    public func worker(forQueue q: Int) -> Int { q / 2 }
    public func isPulledOnDemand(queue: Int) -> Bool { queue < 2 * queuePairs && queue % 2 == 0 }

    /// The configuration space (`struct virtio_net_config`, §5.1.4): link up.
    public var config: VirtioNetConfig {
        var c = VirtioNetConfig(mac: mac)
        c.status = VirtioNetConfig.statusLinkUp
        c.maxVirtqueuePairs = UInt16(clamping: queuePairs)
        c.mtu = mtu
        return c
    }

    public func configSpace() -> [UInt8] { config.serialize() }

    public func setMTU(_ value: UInt64) throws(VhostUserProtocolError) {
        guard value >= 68, value <= 65535 else {
            throw VhostUserProtocolError(request: .netSetMTU, .invalid("MTU \(value) not in 68...65535"))
        }
        mtuValue.store(UInt16(value), ordering: .relaxed)
    }

    public func sendRARP(mac: [UInt8]) { rarpRequests.add(1, ordering: .relaxed) }

    public func handle(_ request: VhostUserQueueRequest) {
        let q = request.queueIndex
        if q >= 2 * queuePairs {
            // Control queue (§5.1.6.5): every well-formed command is acked OK;
            // one without class and command gets ERR; one without an ack byte
            // cannot be answered.
            let chain = request.chain
            guard let cmd = NetControlCommand.parse(chain) else {
                let ack = chain.writableBytes >= 1 ? chain.writableByte(at: chain.writableBytes - 1) : nil
                // SAFETY: one byte inside a writable segment.
                ack?.storeBytes(of: NetControlCommand.ackError, as: UInt8.self)
                request.complete(writtenLength: ack == nil ? 0 : 1)
                return
            }
            cmd.acknowledge(chain, ack: NetControlCommand.ackOK)
            request.complete(writtenLength: 1)
            return
        }
        // TX: header then frame, all device-readable.
        framesTransmitted.add(1, ordering: .relaxed)
        let chain = request.chain
        let frameLength = chain.readableBytes >= Self.headerSize ? chain.readableBytes - Self.headerSize : 0
        defer { request.complete(writtenLength: 0) }
        guard mode == .echo, frameLength > 0 else { framesDropped.add(1, ordering: .relaxed); return }
        guard let rx = request.takeRequest(fromQueue: q - 1) else { framesDropped.add(1, ordering: .relaxed); return }
        let (total, overflow) = Self.headerSize.addingReportingOverflow(frameLength)
        guard !overflow, rx.chain.writableBytes >= total,
              var src = chain.slice(writable: false, offset: Self.headerSize, length: frameLength)
        else {
            framesDropped.add(1, ordering: .relaxed)
            rx.complete(writtenLength: 0)
            return
        }
        // Header (§5.1.6.4): no offloads, num_buffers = 1. A 12-byte local (no allocation).
        var header: (UInt64, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &header) { VirtioNet.Header().write(to: $0) }
        // SAFETY: `header` is a 12-byte local alive for the copy.
        _ = withUnsafeBytes(of: &header) { rx.chain.copyToWritable(at: 0, from: $0) }
        var at = Self.headerSize
        while let s = src.next() {
            _ = rx.chain.copyToWritable(at: at, from: UnsafeRawBufferPointer(start: s.hostPointer, count: Int(s.length)))
            at += s.length
        }
        framesEchoed.add(1, ordering: .relaxed)
        rx.complete(writtenLength: total)
    }
}
