import Foundation
import Logging
import VhostUser
import VhostUserFrontend
import Virtio
import VirtioDriver
import VireoFabric
import VireoSys
import VireoWire
@testable import VireoInitiator
import VireoTestSupport

/// A RemoteNetDevice served by a VhostUserServer, driven by VhostUserFrontend
/// + SplitDriverQueue as the guest (RX = ring 0, TX = ring 1, control = ring 2).
final class NetGuest {
    static let defaultFeatures = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioNet.Feature.mac
        | VirtioNet.Feature.status | VirtioNet.Feature.mtu | VirtioNet.Feature.mergeableRxBuffers
        | VirtioNet.Feature.ctrlVQ | VirtioNet.Feature.ctrlRX
    let device: RemoteNetDevice
    let server: VhostUserServer
    let memory: DriverMemory
    let fe: VhostUserFrontend
    let rxs: [SplitDriverQueue]
    let txs: [SplitDriverQueue]
    let ctrl: SplitDriverQueue
    let pairs: Int
    var rx: SplitDriverQueue { rxs[0] }
    let mac: MACAddress
    let path: String
    let bufferSize: Int
    private var rxBuffers: [[UInt16: UInt64]]
    private var txSent = 0
    private(set) var txDone = 0

    /// `fabric`: connect through this fake fabric instead of RDMA (host unit tests).
    init(tag: String, port: UInt16, network: String = "lan0", mac: MACAddress, bufferSize: Int = 2048,
         features: UInt64 = NetGuest.defaultFeatures, pairs: Int = 1, portName: String? = nil,
         fabric: FakePacketFabric? = nil) throws {
        self.mac = mac
        self.pairs = pairs
        rxBuffers = Array(repeating: [:], count: pairs)
        self.bufferSize = bufferSize
        path = "/tmp/vireo-net-\(getpid())-\(tag).sock"
        var logger = Logger(label: "test.nic.\(tag)")
        logger.logLevel = .notice
        let cfg = NicConfig(socket: path, target: FabricAddress(host: RDMAEnvironment.address, port: port),
                            network: network, mac: mac, queuePairs: pairs, queueSize: 64, port: portName)
        if let fabric {
            device = try RemoteNetDevice(config: cfg, connector: fabric.connector(for: cfg), logger: logger)
        } else {
            device = try RemoteNetDevice(config: cfg, logger: logger)
        }
        server = try VhostUserServer(path: path, device: device,
                                     options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 200)),
                                     logger: logger)
        try server.start()
        device.onConfigChange { [weak server] in _ = try? server?.notifyConfigChange() }
        memory = try DriverMemory(regions: [(0x10_0000, 8 << 20)])
        fe = try VhostUserFrontend(path: path)
        try fe.negotiate(wanted: features | (pairs > 1 ? VirtioNet.Feature.multiqueue : 0))
        try fe.setMemTable(memory)
        let mem = memory
        rxs = (0..<pairs).map { _ in SplitDriverQueue(memory: mem, size: 64, eventIdx: true) }
        txs = (0..<pairs).map { _ in SplitDriverQueue(memory: mem, size: 64, eventIdx: true) }
        ctrl = SplitDriverQueue(memory: memory, size: 8, eventIdx: false)
        for p in 0..<pairs {
            _ = try fe.setUpRing(2 * p, driver: rxs[p])
            _ = try fe.setUpRing(2 * p + 1, driver: txs[p])
        }
        _ = try fe.setUpRing(2 * pairs, driver: ctrl)
    }

    func stop() {
        fe.close()
        server.stop()
        device.stop()
        if let record = device.restartRecordPath { unlink(record) }
    }

    /// Posts `n` receive buffers of `bufferSize` bytes (filled with 0xee).
    func postReceives(_ n: Int, pair: Int = 0) {
        for _ in 0..<n {
            let b = memory.allocate(bufferSize, alignment: 64)
            memory.fill(b, count: bufferSize, byte: 0xee)
            rxBuffers[pair][rxs[pair].add(readable: [], writable: [DriverBuffer(gpa: b, length: UInt32(bufferSize))])!] = b
        }
        fe.kick(2 * pair)
    }

    /// Transmits `frame` (12-byte virtio-net header + Ethernet frame) as two
    /// descriptors, after taking back the TX chains the device completed.
    func send(_ frame: [UInt8], pair: Int = 0) {
        if pair == 0 { txDone += fe.waitForUsed(1, count: 64, timeoutMilliseconds: 0).count }
        let tx = txs[pair]
        let h = memory.allocate(12)
        memory.write(Array(frame[0..<12]), at: h)
        let body = memory.allocate(frame.count - 12)
        memory.write(Array(frame[12...]), at: body)
        _ = tx.add(readable: [DriverBuffer(gpa: h, length: 12), DriverBuffer(gpa: body, length: UInt32(frame.count - 12))],
                   writable: [])
        if pair == 0 { txSent += 1 }
        fe.kick(2 * pair + 1)
    }

    /// Waits until `total` TX chains in all came back (or the timeout); returns how many did.
    @discardableResult
    func waitTransmitted(total: Int, timeoutMilliseconds: Int = 5000) -> Int {
        if total > txDone {
            txDone += fe.waitForUsed(1, count: total - txDone, timeoutMilliseconds: timeoutMilliseconds).count
        }
        return txDone
    }

    /// The next received frame (header + Ethernet frame) and its buffer count; the buffer is posted again.
    func receive(pair: Int = 0, timeoutMilliseconds: Int = 5000) -> [UInt8]? {
        guard let u = fe.waitForUsed(2 * pair, count: 1, timeoutMilliseconds: timeoutMilliseconds).first,
              let gpa = rxBuffers[pair].removeValue(forKey: UInt16(truncatingIfNeeded: u.id)) else { return nil }
        let bytes = memory.read(gpa, count: Int(u.length))
        memory.fill(gpa, count: bufferSize, byte: 0xee)
        rxBuffers[pair][rxs[pair].add(readable: [], writable: [DriverBuffer(gpa: gpa, length: UInt32(bufferSize))])!] = gpa
        fe.kick(2 * pair)
        return bytes
    }

    /// Sends a control command; returns the ack byte.
    func control(_ bytes: [UInt8]) -> UInt8? {
        let c = memory.allocate(bytes.count)
        memory.write(bytes, at: c)
        let a = memory.allocate(1)
        memory.fill(a, count: 1, byte: 0xee)
        _ = ctrl.add(readable: [DriverBuffer(gpa: c, length: UInt32(bytes.count))], writable: [DriverBuffer(gpa: a, length: 1)])
        fe.kick(2 * pairs)
        guard fe.waitForUsed(2 * pairs, count: 1).count == 1 else { return nil }
        return memory.read(a, count: 1)[0]
    }

    /// The config space: (mac, status, pairs, mtu).
    func configSpace() throws -> (mac: [UInt8], status: UInt16, pairs: UInt16, mtu: UInt16) {
        let c = try fe.config(size: 12)
        return (Array(c[0..<6]), UInt16(c[6]) | UInt16(c[7]) << 8, UInt16(c[8]) | UInt16(c[9]) << 8,
                UInt16(c[10]) | UInt16(c[11]) << 8)
    }

    /// A frame: zero virtio-net header, Ethernet header, payload.
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

    /// A broadcast from `a` reaches `b` and `b`'s unicast answer reaches `a`, both intact (after a
    /// reconnect: the switch learns both again).
    static func broadcastAndReply(from a: NetGuest, to b: NetGuest, seed: Int) -> Bool {
        let hello = frame(dst: .broadcast, src: a.mac, payload: payload(seed, 300))
        a.send(hello)
        guard b.receive().map({ Array($0[12...]) }) == Array(hello[12...]) else { return false }
        let reply = frame(dst: a.mac, src: b.mac, payload: payload(seed + 1, 1400))
        b.send(reply)
        return a.receive().map { Array($0[12...]) } == Array(reply[12...])
    }

    static func payload(_ seed: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) } }
}
