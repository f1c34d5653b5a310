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

    // Feature bits (virtio 1.x §5.1.3).
    public static let featureMTU: UInt64 = 1 << 3
    public static let featureMAC: UInt64 = 1 << 5
    public static let featureMergeableRxBuffers: UInt64 = 1 << 15
    public static let featureStatus: UInt64 = 1 << 16
    public static let featureCtrlVQ: UInt64 = 1 << 17
    public static let featureMQ: UInt64 = 1 << 22
    /// `struct virtio_net_hdr_mrg_rxbuf` size (VERSION_1 or MRG_RXBUF).
    public static let headerSize = 12

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
        VhostFeature.version1 | VhostFeature.eventIndex | VhostFeature.indirectDescriptors
            | Self.featureMAC | Self.featureMTU | Self.featureStatus | Self.featureMergeableRxBuffers
            | (ctrlQueue ? Self.featureCtrlVQ : 0) | (queuePairs > 1 ? Self.featureMQ : 0)
    }
    public var protocolFeatures: VhostUserProtocolFeatures {
        [.mq, .logSHMFD, .rarp, .replyAck, .mtu, .backendReq, .config, .resetDevice, .configureMemSlots, .status]
    }
    /// The MTU (config space; NET_SET_MTU updates it).
    public var mtu: UInt16 { mtuValue.load(ordering: .relaxed) }

    public func worker(forQueue q: Int) -> Int { q / 2 }
    public func isPulledOnDemand(queue: Int) -> Bool { queue < 2 * queuePairs && queue % 2 == 0 }

    public func configSpace() -> [UInt8] {
        // mac[6], le16 status (LINK_UP), le16 max_virtqueue_pairs, le16 mtu (§5.1.4).
        var c = mac
        c += [1, 0]
        c += [UInt8(queuePairs & 0xff), UInt8(queuePairs >> 8)]
        c += [UInt8(mtu & 0xff), UInt8(mtu >> 8)]
        return c
    }

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
            // Control queue: class, command, data..., ack (last writable byte) = VIRTIO_NET_OK.
            guard request.chain.writableBytes >= 1, let ack = request.chain.writableByte(at: request.chain.writableBytes - 1) else {
                request.complete(writtenLength: 0)
                return
            }
            ack.storeBytes(of: UInt8(0), as: UInt8.self)
            request.complete(writtenLength: 1)
            return
        }
        // TX: header then frame, all device-readable.
        framesTransmitted.add(1, ordering: .relaxed)
        let chain = request.chain
        let frameLength = chain.readableBytes >= UInt32(Self.headerSize) ? chain.readableBytes - UInt32(Self.headerSize) : 0
        defer { request.complete(writtenLength: 0) }
        guard mode == .echo, frameLength > 0 else { framesDropped.add(1, ordering: .relaxed); return }
        guard let rx = request.takeRequest(fromQueue: q - 1) else { framesDropped.add(1, ordering: .relaxed); return }
        let total = UInt32(Self.headerSize) + frameLength
        guard rx.chain.writableBytes >= total,
              var src = chain.slice(writable: false, offset: UInt32(Self.headerSize), length: frameLength)
        else {
            framesDropped.add(1, ordering: .relaxed)
            rx.complete(writtenLength: 0)
            return
        }
        // Header: all zero (no offloads) except num_buffers = 1 (le16 at byte 10).
        // A 12-byte local (no allocation): bytes 8...11 hold csum_offset and num_buffers.
        var header: (UInt64, UInt32) = (0, (UInt32(1) << 16).littleEndian)
        // SAFETY: `header` is a 12-byte local alive for the copy.
        _ = withUnsafeBytes(of: &header) { rx.chain.copyToWritable(at: 0, from: UnsafeRawBufferPointer(rebasing: $0[0..<Self.headerSize])) }
        var at = UInt32(Self.headerSize)
        while let s = src.next() {
            _ = rx.chain.copyToWritable(at: at, from: UnsafeRawBufferPointer(start: s.hostPointer, count: Int(s.length)))
            at += s.length
        }
        framesEchoed.add(1, ordering: .relaxed)
        rx.complete(writtenLength: total)
    }
}
