import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

@Suite(.serialized) struct NetLoopbackTests {
    @Test func echoesTransmittedFrames() throws {
        let path = socketPath("net")
        let device = LoopbackNetDevice(queuePairs: 2)
        let server = try VhostUserServer(path: path, device: device, options: VhostUserOptions(socketMode: 0o660))
        try server.start()
        defer { server.stop() }
        var st = stat()
        #expect(lstat(path, &st) == 0 && st.st_mode & 0o777 == 0o660)
        let memory = try DriverMemory(size: 4 << 20)
        let fe = try VhostUserFrontend(path: path)
        let wanted = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioNet.Feature.mac
            | VirtioNet.Feature.mergeableRxBuffers | VirtioNet.Feature.status | VirtioNet.Feature.multiqueue
            | VirtioNet.Feature.mtu
        try fe.negotiate(wanted: wanted)
        #expect(fe.protocolFeatures.contains(.rarp) && fe.protocolFeatures.contains(.mtu))
        #expect(!fe.protocolFeatures.contains(.inflightSHMFD))
        #expect(try fe.u64Reply(.getQueueNum) == 5)
        try fe.request(.netSetMTU, payload: fe.u64(9000))
        #expect(device.mtu == 9000)
        try fe.request(.sendRARP, payload: [0x52, 0x54, 0, 1, 2, 3, 0, 0])
        #expect(device.rarpRequests.load(ordering: .relaxed) == 1)
        let cfg = try fe.config(size: 12)
        #expect(Array(cfg[0..<6]) == device.mac && cfg[6] == 1 && cfg[8] == 2 && cfg[10] == 0x28 && cfg[11] == 0x23)
        try fe.setMemTable(memory)
        let rx = SplitDriverQueue(memory: memory, size: 32, eventIdx: true)
        let tx = SplitDriverQueue(memory: memory, size: 32, eventIdx: true)
        try fe.setUpRing(2, driver: rx)
        try fe.setUpRing(3, driver: tx)
        // Post two RX buffers, send one frame.
        let rxBufs = (0..<2).map { _ in memory.allocate(2048) }
        for b in rxBufs { rx.add(readable: [], writable: [DriverBuffer(gpa: b, length: 2048)]) }
        _ = rx.publish()
        let frame = pattern(60, seed: 42)
        let hdr = memory.allocate(12)
        memory.fill(hdr, count: 12, byte: 0)
        let body = memory.allocate(60)
        memory.write(frame, at: body)
        tx.add(readable: [DriverBuffer(gpa: hdr, length: 12), DriverBuffer(gpa: body, length: 60)], writable: [])
        fe.kick(3)
        #expect(fe.waitForUsed(3, count: 1).first?.length == 0)
        let got = fe.waitForUsed(2, count: 1)
        #expect(got.first?.length == 72)
        #expect(memory.read(rxBufs[0] + 12, count: 60) == frame)
        #expect(memory.read(rxBufs[0] + 10, count: 2) == [1, 0]) // num_buffers
        #expect(device.framesEchoed.load(ordering: .relaxed) == 1)
        // No RX buffer left after the second one: the third frame is dropped.
        for _ in 0..<2 {
            tx.add(readable: [DriverBuffer(gpa: hdr, length: 12), DriverBuffer(gpa: body, length: 60)], writable: [])
        }
        fe.kick(3)
        #expect(fe.waitForUsed(3, count: 2).count == 2)
        #expect(fe.waitForUsed(2, count: 1).count == 1)
        #expect(device.framesDropped.load(ordering: .relaxed) == 1)
    }

    /// Control queue (§5.1.6.5): a well-formed command is acked OK, one
    /// without class and command byte gets ERR.
    @Test func controlQueueAcks() throws {
        let path = socketPath("netctrl")
        let device = LoopbackNetDevice(queuePairs: 1, ctrlQueue: true)
        let server = try VhostUserServer(path: path, device: device)
        try server.start()
        defer { server.stop() }
        let memory = try DriverMemory(size: 2 << 20)
        let fe = try VhostUserFrontend(path: path)
        try fe.negotiate(wanted: VirtioFeatures.version1 | VirtioNet.Feature.ctrlVQ | VirtioNet.Feature.ctrlRX)
        try fe.setMemTable(memory)
        let ctrl = SplitDriverQueue(memory: memory, size: 8, eventIdx: false)
        try fe.setUpRing(2, driver: ctrl)
        let cmd = memory.allocate(3)
        memory.write([NetControlCommand.Class.rx, NetControlCommand.Class.rxPromisc, 1], at: cmd)
        let short = memory.allocate(1)
        memory.write([NetControlCommand.Class.rx], at: short)
        let acks = (0..<2).map { _ in memory.allocate(1) }
        for a in acks { memory.fill(a, count: 1, byte: 0xee) }
        ctrl.add(readable: [DriverBuffer(gpa: cmd, length: 3)], writable: [DriverBuffer(gpa: acks[0], length: 1)])
        ctrl.add(readable: [DriverBuffer(gpa: short, length: 1)], writable: [DriverBuffer(gpa: acks[1], length: 1)])
        fe.kick(2)
        #expect(fe.waitForUsed(2, count: 2).map(\.length) == [1, 1])
        #expect(memory.read(acks[0], count: 1) == [NetControlCommand.ackOK])
        #expect(memory.read(acks[1], count: 1) == [NetControlCommand.ackError])
    }
}

/// QEMU 7.2's vhost-user net front-end negotiates protocol features
/// (GET/SET_PROTOCOL_FEATURES) but does not echo VHOST_USER_F_PROTOCOL_FEATURES
/// in SET_FEATURES, then enables rings with SET_VRING_ENABLE. The back-end must
/// accept that order (a regression once left every QEMU guest's link down).
@Suite struct QEMUNetNegotiationOrderTests {
    @Test func setVringEnableAfterSetProtocolFeaturesWithoutBit30() throws {
        let path = socketPath("qemu-net-order")
        let server = try VhostUserServer(path: path, device: LoopbackNetDevice())
        try server.start()
        defer { server.stop() }
        let fe = try VhostUserFrontend(path: path)
        try fe.request(.setOwner)
        let offered = try fe.u64Reply(.getFeatures)
        #expect(offered & VhostFeature.protocolFeatures != 0)
        _ = try fe.u64Reply(.getProtocolFeatures)
        try fe.request(.setProtocolFeatures, payload: fe.u64(VhostUserProtocolFeatures.mq.rawValue))
        // SET_FEATURES without bit 30, as QEMU 7.2 net sends it.
        try fe.request(.setFeatures, payload: fe.u64(VirtioFeatures.version1 | VirtioNet.Feature.mac))
        var enable: [UInt8] = []
        enable.appendLE(UInt32(0)); enable.appendLE(UInt32(1))
        try fe.request(.setVringEnable, payload: enable)
        // Still connected: a request with a reply is answered.
        #expect(try fe.u64Reply(.getQueueNum) >= 2)
        #expect(!fe.waitForClose(timeoutMilliseconds: 200))
    }

    @Test func setVringEnableWithoutAnyProtocolNegotiationIsRefused() throws {
        let path = socketPath("no-proto")
        let server = try VhostUserServer(path: path, device: LoopbackNetDevice())
        try server.start()
        defer { server.stop() }
        let fe = try VhostUserFrontend(path: path)
        try fe.request(.setFeatures, payload: fe.u64(VirtioFeatures.version1))
        var enable: [UInt8] = []
        enable.appendLE(UInt32(0)); enable.appendLE(UInt32(1))
        try fe.request(.setVringEnable, payload: enable)
        #expect(fe.waitForClose())
    }
}
