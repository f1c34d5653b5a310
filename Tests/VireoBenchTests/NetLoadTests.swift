import Foundation
import Testing
import VhostUser
import VireoSys
@testable import VireoBench

/// `vireo-bench net`'s engine against two in-process vhost-user NICs joined
/// by a virtual cable (`NetBridgeDevice`), no RDMA.
@Suite(.serialized) struct NetLoadTests {
    static let macA: [UInt8] = [0x52, 0x54, 0x00, 0xbe, 0x00, 0x0a]
    static let macB: [UInt8] = [0x52, 0x54, 0x00, 0xbe, 0x00, 0x0b]

    /// Two servers on fresh sockets, cabled together.
    final class Cable {
        let a: NetBridgeDevice, b: NetBridgeDevice
        let serverA: VhostUserServer, serverB: VhostUserServer
        init(_ tag: String) throws {
            a = try NetBridgeDevice(mac: NetLoadTests.macA)
            b = try NetBridgeDevice(mac: NetLoadTests.macB)
            NetBridgeDevice.cable(a, b)
            serverA = try VhostUserServer(path: "/tmp/vireo-bench-\(getpid())-\(tag)-a.sock", device: a)
            serverB = try VhostUserServer(path: "/tmp/vireo-bench-\(getpid())-\(tag)-b.sock", device: b)
            try serverA.start()
            try serverB.start()
        }
        func stop() { serverA.stop(); serverB.stop() }
    }

    @Test(arguments: [64, 1500])
    func framesFlowAndValidate(frameBytes: Int) throws {
        let cable = try Cable("flow\(frameBytes)")
        defer { cable.stop() }
        var c = NetLoadConfig(txSocket: cable.serverA.path, rxSocket: cable.serverB.path)
        c.frameBytes = frameBytes
        c.runtime = 0.5
        c.ramp = 0.2
        c.queueSize = 64
        c.memoryBytes = 4 << 20
        c.label = "unit \"bridge\""
        c.pids = [.init(name: "self", pid: getpid())]
        var lines: [String] = []
        let r = try NetLoad(config: c).run { lines.append($0) }
        print(r.summary)
        #expect(r.helloDelivered)
        #expect(r.rxFrames > 50, "\(r.summary)")
        #expect(r.errors == 0 && r.corrupt == 0 && r.outOfOrder == 0, "\(r.summary)")
        #expect(r.rxBytes == r.rxFrames * UInt64(frameBytes))
        #expect(r.txFrames > 0 && r.loss >= 0 && r.loss <= 1)
        #expect(r.fps > 0 && r.gbps > 0 && abs(r.mbps * 8 / 1000 - r.gbps) < 1e-9)
        #expect(r.seconds >= 0.45 && r.seconds < 2)
        #expect(cable.a.framesTransmitted.load(ordering: .relaxed) >= r.txFrames)
        #expect(cable.b.framesDelivered.load(ordering: .relaxed) >= r.rxFrames)
        #expect(lines.first?.contains("52:54:00:be:00:0a") == true)
        // JSON: the contract's keys, parseable, label escaped.
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.json.utf8)) as? [String: Any])
        #expect(obj["tool"] as? String == "vireo-bench net")
        #expect(obj["label"] as? String == "unit \"bridge\"")
        #expect(obj["frame_bytes"] as? Int == frameBytes)
        #expect((obj["rx_frames"] as? NSNumber)?.uint64Value == r.rxFrames)
        for k in ["seconds", "tx_frames", "rx_bytes", "fps", "gbps", "mbps", "loss"] { #expect(obj[k] != nil, "\(k)") }
        let cpu = try #require(obj["cpu_s"] as? [String: Double])
        #expect((cpu["self"] ?? 0) > 0)
        #expect((obj["cpu_us_per_frame"] as? [String: Double])?["self"] != nil)
    }

    @Test func frameAboveTheMTUIsRefused() throws {
        let cable = try Cable("mtu")
        defer { cable.stop() }
        var c = NetLoadConfig(txSocket: cable.serverA.path, rxSocket: cable.serverB.path)
        c.frameBytes = 9000
        c.memoryBytes = 8 << 20
        #expect(throws: NetLoadError.self) { _ = try NetLoad(config: c).run() }
    }

    @Test func badOptionsAreRefused() throws {
        var c = NetLoadConfig(txSocket: "/tmp/x", rxSocket: "/tmp/x")
        #expect(throws: NetLoadError.self) { try c.validate() }
        c.rxSocket = "/tmp/y"
        c.queueSize = 100
        #expect(throws: NetLoadError.self) { try c.validate() }
        c.queueSize = 256
        c.frameBytes = 20
        #expect(throws: NetLoadError.self) { try c.validate() }
        #expect(throws: NetLoadError.self) { _ = try NetLoadConfig.NamedPID.parse("initiator") }
        #expect(throws: NetLoadError.self) { _ = try NetLoadConfig.NamedPID.parse("a=-3") }
        #expect(try NetLoadConfig.NamedPID.parse("initiator-a=42") == .init(name: "initiator-a", pid: 42))
        var missing = NetLoadConfig(txSocket: "/tmp/vireo-bench-none-a.sock", rxSocket: "/tmp/vireo-bench-none-b.sock")
        missing.runtime = 0.1
        #expect(throws: NetLoadError.self) { _ = try NetLoad(config: missing).run() }
    }

    @Test func frameChecks() {
        let n = 12 + 64
        let p = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 8)
        defer { p.deallocate() }
        let dst = NetFrameLayout.macValue(Self.macB), src = NetFrameLayout.macValue(Self.macA)
        NetFrameLayout.writeTemplate(p, frameBytes: 64, dst: dst, src: src, magic: NetFrameLayout.dataMagic)
        NetFrameLayout.stamp(p, frameBytes: 64, sequence: 77)
        p.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 10, as: UInt16.self)
        func check(_ len: Int = n) -> NetFrameLayout.Check {
            NetFrameLayout.check(p, length: len, capacity: 256, frameBytes: 64, dst: dst, src: src)
        }
        #expect(check() == .data(77))
        #expect(check(n - 1) == .corrupt)         // truncated
        #expect(check(300) == .foreign)           // longer than the buffer
        p.storeBytes(of: UInt8(0x00), toByteOffset: n - 1, as: UInt8.self)
        #expect(check() == .corrupt)              // trailer
        NetFrameLayout.stamp(p, frameBytes: 64, sequence: 78)
        p.storeBytes(of: UInt8(0x99), toByteOffset: 12, as: UInt8.self)
        #expect(check() == .corrupt)              // destination
        NetFrameLayout.writeTemplate(p, frameBytes: 64, dst: dst, src: src, magic: NetFrameLayout.helloMagic)
        #expect(check() == .foreign)
        #expect(NetFrameLayout.macText(src) == "52:54:00:be:00:0a")
        #expect((ProcessCPU.seconds(pid: getpid()) ?? -1) >= 0)
        #expect(ProcessCPU.seconds(pid: Int32.max) == nil)
    }
}
