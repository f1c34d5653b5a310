import Testing
import CVireoVerbs
@testable import VireoFabric
import VireoSys

/// Fabric tests that need no RDMA device.
@Suite struct FabricUnitTests {
    @Test(arguments: [
        ("10.99.0.1:4420", "10.99.0.1", UInt16(4420)),
        ("[fe80::1]:7", "fe80::1", UInt16(7)),
        ("storage-a:65535", "storage-a", UInt16(65535)),
    ])
    func addressParses(text: String, host: String, port: UInt16) throws {
        let a = try FabricAddress(parsing: text)
        #expect(a.host == host && a.port == port)
        #expect(a.description == text)
    }

    @Test(arguments: ["10.0.0.1", "10.0.0.1:", ":80", "10.0.0.1:65536", "[::1:80", "[::1]80", "h:-1"])
    func badAddressIsRejected(text: String) {
        #expect(throws: FabricError.self) { _ = try FabricAddress(parsing: text) }
    }

    @Test func sendBatchChainsWorkRequestsWithoutAllocation() {
        let b = SendBatch(capacity: 4, maxSegments: 2)
        b.send(wrId: 1, local: ScatterGatherElement(address: 0x1000, length: 64, lkey: 9), immediate: 0x0102_0304)
        b.write(wrId: 2, local: ScatterGatherElement(address: 0x2000, length: 4096, lkey: 9),
                remoteAddress: 0xdead_0000, rkey: 77, signaled: false)
        b.appendSegment(ScatterGatherElement(address: 0x3000, length: 512, lkey: 10))
        b.read(wrId: 3, local: ScatterGatherElement(address: 0x4000, length: 8, lkey: 9), remoteAddress: 5, rkey: 6)
        #expect(b.count == 3)
        let head = b.linked()!
        #expect(head.pointee.opcode == IBV_WR_SEND_WITH_IMM)
        #expect(head.pointee.imm_data == UInt32(0x0102_0304).bigEndian)
        #expect(head.pointee.send_flags & IBV_SEND_SIGNALED.rawValue != 0)
        let w = head.pointee.next!
        #expect(w.pointee.opcode == IBV_WR_RDMA_WRITE)
        #expect(w.pointee.send_flags & IBV_SEND_SIGNALED.rawValue == 0)
        #expect(w.pointee.num_sge == 2 && w.pointee.sg_list[1].addr == 0x3000)
        #expect(w.pointee.wr.rdma.remote_addr == 0xdead_0000 && w.pointee.wr.rdma.rkey == 77)
        let r = w.pointee.next!
        #expect(r.pointee.opcode == IBV_WR_RDMA_READ && r.pointee.next == nil)
        b.reset()
        #expect(b.isEmpty && b.linked() == nil)
    }

    @Test func recvBatchChains() {
        let b = RecvBatch(capacity: 2)
        b.receive(wrId: 10, local: ScatterGatherElement(address: 1, length: 2, lkey: 3))
        b.receive(wrId: 11, local: ScatterGatherElement(address: 4, length: 5, lkey: 6))
        #expect(b.isFull)
        let head = b.linked()!
        #expect(head.pointee.wr_id == 10 && head.pointee.next!.pointee.wr_id == 11)
        #expect(head.pointee.next!.pointee.next == nil)
    }

    @Test func probeHandshakeIsValidated() {
        #expect((try? FabricProbe.parseRequest(FabricProbe.request(bufferSize: 4096)).get()) == 4096)
        var bad = FabricProbe.request(bufferSize: 4096)
        bad[0] = 0x58
        #expect((try? FabricProbe.parseRequest(bad).get()) == nil)
        var wrongVersion = FabricProbe.request(bufferSize: 4096)
        wrongVersion[4] = 9
        #expect((try? FabricProbe.parseRequest(wrongVersion).get()) == nil)
        #expect((try? FabricProbe.parseRequest(FabricProbe.request(bufferSize: 0)).get()) == nil)
        #expect((try? FabricProbe.parseRequest(FabricProbe.request(bufferSize: FabricProbe.maxBuffer + 1)).get()) == nil)
        #expect((try? FabricProbe.parseRequest(Array(FabricProbe.request(bufferSize: 1).prefix(15))).get()) == nil)
        let acc = FabricProbe.accept(address: 0x1122_3344_5566_7788, length: 99, rkey: 0xabcd)
        #expect(acc.count == 28 && acc.count <= PrivateDataLimit.accept)
        #expect(acc.loadLE(UInt64.self, at: 8) == 0x1122_3344_5566_7788)
        #expect(acc.loadLE(UInt32.self, at: 24) == 0xabcd)
    }

    @Test func errorsReadAsOneLine() {
        let r = FabricError.rejected(status: 28, privateData: Array("no such export".utf8) + [0, 0])
        #expect(r.description == "connection rejected by peer (status 28): no such export")
        #expect(FabricError.noListener("10.99.0.1:9").description.contains("nothing listens at 10.99.0.1:9"))
        #expect(FabricError.call(SystemError(call: "ibv_reg_mr", errno: 12)).description.hasPrefix("ibv_reg_mr:"))
    }

    @Test func missingDeviceGivesAHint() throws {
        // On a machine without RDMA (build hosts, CI) opening a device must say
        // what is missing; where a device exists this checks the name lookup instead.
        if VerbsContext.deviceNames().isEmpty {
            let error = #expect(throws: FabricError.self) { _ = try VerbsContext(deviceName: nil) }
            guard case .noDevice(let hint)? = error else { Issue.record("expected noDevice, got \(String(describing: error))"); return }
            #expect(hint.contains("rxe") || hint.contains("ibverbs-providers") || hint.contains("ib_uverbs"))
        } else {
            #expect(throws: FabricError.deviceNotFound("no-such-dev")) { _ = try VerbsContext(deviceName: "no-such-dev") }
        }
    }
}
