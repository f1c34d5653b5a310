import Foundation
import Logging
import Synchronization
import Testing
import Virtio
import VireoFabric
@testable import VireoInitiator
import VireoSys
import VireoTestSupport
import VireoWire

/// Each remote device has a protection domain of its own (issue #12): a key
/// that one VM's guest memory is registered under means nothing on another
/// VM's connections, so a target serving one VM cannot use a key it saw from
/// another VM, even when both VMs' disks come from the same target.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct DeviceIsolationIntegrationTests {
    /// A target that accepts `count` connections (answering their handshakes and granting
    /// what they ask), then lets the test RDMA-WRITE on any of them with any key.
    final class KeyThief: @unchecked Sendable {
        // SAFETY: `accepted` is filled by the accept thread before `done` is signalled;
        // the test touches it only after waiting for that.
        let listener: Listener
        private var accepted: [Connection] = []
        private let done = DispatchSemaphore(value: 0)
        private var source: RegisteredBuffer?

        init(host: String, count: Int) throws {
            listener = try Listener(address: FabricAddress(host: host, port: 0))
            Thread.detachNewThread { [self] in
                defer { done.signal() }
                while accepted.count < count {
                    guard let req = try? listener.nextRequest(timeoutMilliseconds: 20_000),
                          let r = try? ConnectRequest(decoding: req.privateData) else { return }
                    let g = BlockGeometry(capacityBytes: 1 << 20, blockSize: 512, flags: [], maxDiscardBytes: 0,
                                          maxWriteZeroesBytes: 0, queueDepth: r.queueDepth, maxSegments: min(8, r.maxSegments),
                                          maxIOBytes: r.maxIOBytes, maxInlineBytes: 0, optimalIOBytes: 0)
                    let accept = TestTargetHandshake.accept(g.encoded())
                    let qp = QueuePairConfig(sendDepth: 16, receiveDepth: 16, maxSendSegments: 1, maxReceiveSegments: 1)
                    guard let c = try? req.accept(resources: ConnectionResources(queuePair: qp), privateData: accept),
                          (try? TestTargetHandshake.answer(on: c, request: req.privateData, accept: accept)) != nil else { return }
                    accepted.append(c)
                }
            }
        }

        var port: UInt16 { listener.port }

        func waitForConnections() -> [Connection] {
            done.wait()
            return accepted
        }

        /// RDMA-WRITEs 512 bytes of `byte` to `(address, rkey)` on `connection`; the completion's status.
        func write(on connection: Connection, address: UInt64, rkey: UInt32, byte: UInt8) throws -> CompletionStatus {
            let buffer = try RegisteredBuffer(pd: connection.pd, count: 512, access: [.localWrite])
            buffer.bytes.initializeMemory(as: UInt8.self, repeating: byte)
            source = buffer
            let batch = SendBatch(capacity: 1)
            batch.write(wrId: 42, local: buffer.region.segment(offset: 0, length: 512), remoteAddress: address, rkey: rkey)
            try connection.queuePair.post(batch)
            let completions = CompletionBuffer(capacity: 4)
            let deadline = monotonicNanoseconds() &+ 20_000_000_000
            while monotonicNanoseconds() < deadline {
                if try connection.queuePair.sendCQ.poll(into: completions) > 0 { return completions[0].status }
                usleep(1000)
            }
            throw FabricError.timedOut("RDMA WRITE completion")
        }
    }

    /// One VM's guest RAM: 1 MiB at guest-physical 0x100000, registered as its VMM's memory table would have it.
    static func guestRAM(for device: RemoteBlockDevice) throws -> (GuestMemory.Region, UInt32) {
        let ram = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        ram.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << 20)
        let region = GuestMemory.Region(guestPhysAddr: 0x10_0000, size: 1 << 20, userAddr: 0, hostAddress: ram)
        device.memoryRegionsAdded([region])
        let key = try #require(device.regions.lookup(address: 0x10_0000, length: 4096)).rkey
        return (region, key)
    }

    @Test func aTargetOfOneVMCannotUseTheKeyOfAnother() throws {
        let thief = try KeyThief(host: RDMAEnvironment.address, count: 2)
        var logger = Logger(label: "test.isolation")
        logger.logLevel = .critical
        // Whole-memory keys: the protection domain alone has to keep the VMs apart (with the
        // default memory windows a region's own key reaches nothing at all, checked below too).
        func disk(_ name: String) -> DiskConfig {
            var c = DiskConfig(socket: "/tmp/vireo-iso-\(getpid())-\(name).sock",
                               target: FabricAddress(host: RDMAEnvironment.address, port: thief.port), export: name,
                               queues: 1, queueDepth: 16)
            c.remoteAccess = .wholeMemory
            return c
        }
        let vmA = try RemoteBlockDevice(config: disk("a"), logger: logger)
        defer { vmA.stop() }
        let vmB = try RemoteBlockDevice(config: disk("b"), logger: logger)
        defer { vmB.stop() }
        #expect(ObjectIdentifier(vmA.pd) != ObjectIdentifier(vmB.pd), "each device has a PD of its own")
        let (ramA, keyA) = try Self.guestRAM(for: vmA)
        let (ramB, keyB) = try Self.guestRAM(for: vmB)
        defer {
            // Deregistered before the memory goes.
            vmA.memoryRegionsRemoved([ramA])
            vmB.memoryRegionsRemoved([ramB])
            ramA.hostAddress.deallocate()
            ramB.hostAddress.deallocate()
        }
        let conns = thief.waitForConnections()
        try #require(conns.count == 2)
        // On VM A's connection, A's key reaches A's memory (whole-memory registration, until
        // per-request windows); B's key, valid in B's PD only, is refused and B's memory is untouched.
        #expect(try thief.write(on: conns[0], address: 0x10_0000, rkey: keyA, byte: 0xAA) == .success)
        #expect(UnsafeRawBufferPointer(start: ramA.hostAddress, count: 512).allSatisfy { $0 == 0xAA })
        let stolen = try thief.write(on: conns[0], address: 0x10_0000, rkey: keyB, byte: 0xBB)
        #expect(stolen == .remoteAccessError, "B's key on A's connection: \(stolen)")
        #expect(UnsafeRawBufferPointer(start: ramB.hostAddress, count: 4096).allSatisfy { $0 == 0 })
    }
}

extension DeviceIsolationIntegrationTests {
    /// With the default memory windows, a disk's guest memory is unreachable under its region's
    /// own key even on its own connection: only a command's windows reach it.
    @Test func onWindowsTheRegionsOwnKeyReachesNothing() throws {
        let thief = try KeyThief(host: RDMAEnvironment.address, count: 1)
        var logger = Logger(label: "test.isolation")
        logger.logLevel = .critical
        let vm = try RemoteBlockDevice(
            config: DiskConfig(socket: "/tmp/vireo-iso-\(getpid())-w.sock",
                               target: FabricAddress(host: RDMAEnvironment.address, port: thief.port), export: "w",
                               queues: 1, queueDepth: 16), logger: logger)
        defer { vm.stop() }
        let (ram, key) = try Self.guestRAM(for: vm)
        defer {
            vm.memoryRegionsRemoved([ram])
            ram.hostAddress.deallocate()
        }
        let conns = thief.waitForConnections()
        try #require(conns.count == 1)
        #expect(try thief.write(on: conns[0], address: 0x10_0000, rkey: key, byte: 0xAA) == .remoteAccessError)
        #expect(UnsafeRawBufferPointer(start: ram.hostAddress, count: 4096).allSatisfy { $0 == 0 })
    }
}
