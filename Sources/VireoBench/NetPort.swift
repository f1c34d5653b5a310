import VhostUser
import VhostUserFrontend
import Virtio
import VirtioDriver
import VireoSys

/// One virtio-net NIC driven the way a VMM and its guest drive it: a
/// vhost-user front-end on `socket` negotiates VERSION_1, EVENT_IDX, MAC,
/// MTU, STATUS and MRG_RXBUF, reads the MAC and MTU from the configuration
/// space, hands over memfd guest memory and sets up one RX (0) and one TX (1)
/// ring. Every RX descriptor is bound to a buffer that holds a whole frame at
/// the MTU (one buffer per frame); every TX descriptor to a buffer holding a
/// templated frame of `frameBytes` (see `NetFrameLayout`).
///
/// Setup code (allocation is fine); the rings are then driven by one thread.
final class NetPort {
    static let wantedFeatures = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioNet.Feature.mac
        | VirtioNet.Feature.mtu | VirtioNet.Feature.status | VirtioNet.Feature.mergeableRxBuffers
    static let requiredFeatures = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioNet.Feature.mac

    let socket: String
    let frontend: VhostUserFrontend
    let memory: DriverMemory
    /// This NIC's MAC (48-bit value, see `NetFrameLayout.macValue`).
    let mac: UInt64
    let mtu: Int
    let features: UInt64
    let rx: NetRing
    let tx: NetRing
    /// RX buffer i is at `rxBase + i * rxStride`, `rxBufferBytes` long.
    let rxBase: UnsafeMutableRawPointer
    let rxStride: Int
    let rxBufferBytes: Int
    /// TX buffer i is at `txBase + i * txStride`.
    let txBase: UnsafeMutableRawPointer
    let txStride: Int
    let frameBytes: Int

    /// Connects to `socket` and sets the NIC up with `queueSize`-entry rings
    /// in `memoryBytes` of guest memory, for frames of `frameBytes`.
    init(socket: String, queueSize: Int, memoryBytes: Int, frameBytes: Int) throws(NetLoadError) {
        self.socket = socket
        self.frameBytes = frameBytes
        guard queueSize >= 2, queueSize <= 32768, queueSize & (queueSize - 1) == 0 else {
            throw .invalid("queue size \(queueSize) is not a power of two in 2...32768")
        }
        do throws(VhostUserFrontendError) {
            do { frontend = try VhostUserFrontend(path: socket) } catch { throw VhostUserFrontendError.system(error) }
            try frontend.negotiate(wanted: Self.wantedFeatures)
            features = frontend.features
            if features & Self.requiredFeatures != Self.requiredFeatures {
                throw VhostUserFrontendError.badReply(
                    "the device does not offer VERSION_1, EVENT_IDX and MAC (features 0x\(String(features, radix: 16)))")
            }
            let cfg = try frontend.config(size: 12)
            mac = NetFrameLayout.macValue(Array(cfg[0..<6]))
            let cfgMTU = Int(cfg[10]) | Int(cfg[11]) << 8
            mtu = features & VirtioNet.Feature.mtu != 0 && cfgMTU >= 68 ? cfgMTU : 1500
        } catch { throw .vhostUser(socket, "\(error)") }
        guard frameBytes >= NetFrameLayout.minFrameBytes, frameBytes <= mtu + 18 else {
            throw .invalid("frame of \(frameBytes) bytes does not fit \(NetFrameLayout.minFrameBytes)...\(mtu + 18) (MTU \(mtu) of \(socket))")
        }
        rxBufferBytes = NetFrameLayout.headerBytes + 14 + mtu + 4
        rxStride = (rxBufferBytes + 63) & ~63
        txStride = (NetFrameLayout.headerBytes + frameBytes + 63) & ~63
        let ringBytes = 2 * (RingLayout.splitDescriptorTableBytes(size: UInt16(queueSize))
            + RingLayout.splitAvailRingBytes(size: UInt16(queueSize)) + RingLayout.splitUsedRingBytes(size: UInt16(queueSize))
            + queueSize * 16 + 64)
        let needed = ringBytes + queueSize * (rxStride + txStride) + 4096
        let pageBytes = 4096
        let size = (max(memoryBytes, 1 << 20) + pageBytes - 1) / pageBytes * pageBytes
        guard needed <= size else {
            throw .invalid("guest memory of \(size) bytes is too small: rings and buffers need \(needed) (raise --memory)")
        }
        do { memory = try DriverMemory(size: size, gpa: 0x10_0000) } catch { throw .system("guest memory (memfd \(size) bytes)", "\(error)") }
        let rxQueue = SplitDriverQueue(memory: memory, size: UInt16(queueSize), eventIdx: true, indirectCapacity: 1)
        let txQueue = SplitDriverQueue(memory: memory, size: UInt16(queueSize), eventIdx: true, indirectCapacity: 1)
        let rxGPA = memory.allocate(queueSize * rxStride, alignment: 64)
        let txGPA = memory.allocate(queueSize * txStride, alignment: 64)
        rxBase = memory.host(rxGPA)
        txBase = memory.host(txGPA)
        do throws(VhostUserFrontendError) {
            try frontend.setMemTable(memory)
            rx = NetRing(queue: rxQueue, ring: try frontend.setUpRing(0, driver: rxQueue))
            tx = NetRing(queue: txQueue, ring: try frontend.setUpRing(1, driver: txQueue))
        } catch { throw .vhostUser(socket, "\(error)") }
        for i in 0..<queueSize {
            rx.bind(UInt16(i), gpa: rxGPA + UInt64(i * rxStride), length: UInt32(rxBufferBytes), writable: true)
            tx.bind(UInt16(i), gpa: txGPA + UInt64(i * txStride), length: UInt32(NetFrameLayout.headerBytes + frameBytes),
                    writable: false)
        }
    }

    /// RX buffer `id`.
    @inline(__always)
    func rxBuffer(_ id: UInt16) -> UnsafeMutableRawPointer { rxBase + Int(id) * rxStride }

    /// TX buffer `id`.
    @inline(__always)
    func txBuffer(_ id: UInt16) -> UnsafeMutableRawPointer { txBase + Int(id) * txStride }

    /// Makes `count` RX buffers available (ids 0..<count) and kicks.
    func postReceiveBuffers(_ count: Int) {
        for i in 0..<min(count, Int(rx.size)) { rx.post(UInt16(i)) }
        rx.publish()
    }

    /// Writes every TX buffer's frame: to `dst`, from this NIC, with `magic`.
    func writeTransmitTemplates(dst: UInt64, magic: UInt32) {
        for i in 0..<Int(tx.size) {
            NetFrameLayout.writeTemplate(txBuffer(UInt16(i)), frameBytes: frameBytes, dst: dst, src: mac, magic: magic)
        }
    }

    /// Whether the device reports the link up (STATUS; always up without it).
    func isLinkUp() throws(NetLoadError) -> Bool {
        guard features & VirtioNet.Feature.status != 0 else { return true }
        do {
            let cfg = try frontend.config(size: 8)
            return (UInt16(cfg[6]) | UInt16(cfg[7]) << 8) & VirtioNetConfig.statusLinkUp != 0
        } catch { throw .vhostUser(socket, "GET_CONFIG: \(error)") }
    }

    /// Waits until the link is up (polls the configuration space).
    func waitForLink(timeoutMilliseconds: Int) throws(NetLoadError) {
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while try !isLinkUp() {
            if monotonicNanoseconds() > deadline { throw .timeout("link of \(socket) still down after \(timeoutMilliseconds) ms") }
            sleepMilliseconds(20)
        }
    }

    /// Closes the vhost-user connection (the back-end resets the device).
    func close() { frontend.close() }
}
