import Foundation
import Logging
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// A unique socket path under /tmp.
func socketPath(_ tag: String) -> String {
    "/tmp/vireo-vu-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max)).sock"
}

let blockFeatures: UInt64 = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc
    | VirtioBlk.Feature.flush | VirtioBlk.Feature.blockSize | VirtioBlk.Feature.multiqueue
    | VirtioBlk.Feature.segMax | VirtioBlk.Feature.discard | VirtioBlk.Feature.writeZeroes

/// A virtio-blk request laid out in driver memory.
struct BlockRequest {
    let header: UInt64
    let data: UInt64
    let dataLength: UInt32
    let status: UInt64
}

extension DriverMemory {
    /// Writes a virtio-blk header and allocates data and status buffers.
    func blockRequest(type: UInt32, sector: UInt64, dataLength: UInt32, dataGPA: UInt64? = nil) -> BlockRequest {
        let h = allocate(16, alignment: 16)
        var hdr: [UInt8] = []
        hdr.appendLE(type); hdr.appendLE(UInt32(0)); hdr.appendLE(sector)
        write(hdr, at: h)
        let d = dataGPA ?? (dataLength > 0 ? allocate(Int(dataLength), alignment: 512) : 0)
        let s = allocate(1, alignment: 1)
        fill(s, count: 1, byte: 0xee)
        return BlockRequest(header: h, data: d, dataLength: dataLength, status: s)
    }
}

extension BlockRequest {
    /// The chain's buffers: header (+ data for OUT), then (data for IN +) status.
    func buffers(write: Bool) -> (readable: [DriverBuffer], writable: [DriverBuffer]) {
        var readable = [DriverBuffer(gpa: header, length: 16)]
        var writable: [DriverBuffer] = []
        if dataLength > 0 {
            if write { readable.append(DriverBuffer(gpa: data, length: dataLength)) } else {
                writable.append(DriverBuffer(gpa: data, length: dataLength))
            }
        }
        writable.append(DriverBuffer(gpa: status, length: 1))
        return (readable, writable)
    }
}

extension SplitDriverQueue {
    /// Adds `r` as OUT (data readable) or IN (data writable) and returns the head.
    @discardableResult
    func add(_ r: BlockRequest, write: Bool) -> UInt16 {
        let b = r.buffers(write: write)
        return add(readable: b.readable, writable: b.writable)!
    }
}

/// A running server for a MemoryBlockDevice and a connected front-end.
final class BlockRig {
    let path: String
    let device: MemoryBlockDevice
    let server: VhostUserServer
    let memory: DriverMemory
    var frontend: VhostUserFrontend

    init(tag: String, queues: Int = 2, memory: DriverMemory? = nil, capacity: Int = 1 << 20,
         logsDeviceWrites: Bool = true, drainTimeoutNanoseconds: UInt64 = 5_000_000_000) throws {
        path = socketPath(tag)
        device = MemoryBlockDevice(capacityBytes: capacity, numQueues: queues, workerCount: queues)
        var logger = Logger(label: "test.\(tag)")
        logger.logLevel = .critical
        var options = VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 200))
        options.logsDeviceWrites = logsDeviceWrites
        options.drainTimeoutNanoseconds = drainTimeoutNanoseconds
        server = try VhostUserServer(path: path, device: device, options: options, logger: logger)
        try server.start()
        self.memory = try memory ?? DriverMemory(size: 8 << 20)
        frontend = try VhostUserFrontend(path: path)
    }

    /// Reconnects the front-end (the old connection is closed first).
    func reconnect() throws {
        frontend.close()
        waitUntil { self.server.session == nil }
        frontend = try VhostUserFrontend(path: path)
    }

    deinit { server.stop() }
}

/// Polls `cond` for up to `seconds`.
@discardableResult
func waitUntil(_ seconds: Double = 5, _ cond: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if cond() { return true }
        usleep(1000)
    }
    return cond()
}

func pattern(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }
