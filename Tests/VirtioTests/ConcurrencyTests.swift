import Synchronization
import Testing
import VireoSys
import Virtio
import VirtioDriver
#if canImport(Glibc)
import Glibc
#endif

/// Moves a single-owner object to another thread.
final class Handoff<T>: @unchecked Sendable {
    // SAFETY: the value is used by exactly one thread after the handoff.
    let value: T
    init(_ value: T) { self.value = value }
}

final class StopFlag: Sendable {
    let stopped = Atomic<Bool>(false)
}

/// Driver and device on two OS threads, polling: exercises the acquire /
/// release ordering on avail.idx, used.idx and packed descriptor flags.
/// The driver stamps a sequence number into each readable buffer; the device
/// copies it to the writable buffer; the driver checks every completion.
@Suite struct ConcurrencyTests {
    static let chains = 10_000
    /// A guard against hangs, not a speed requirement: under TCG or on a loaded
    /// 2-core host, two spinning threads take far longer than natively.
    static let deadline: UInt64 = 180_000_000_000

    /// Runs the device loop on a thread until `stop`.
    static func runDevice<Q: DeviceQueue>(_ q: Q, stop: StopFlag) throws -> OSThread {
        let box = Handoff((q, Chain(queueSize: q.size)))
        return try OSThread(name: "vq-device") {
            let (q, chain) = box.value
            var scratch: UInt64 = 0
            while !stop.stopped.load(ordering: .relaxed) {
                do {
                    // Nothing available: give the CPU to the driver thread
                    // (on 2 vCPUs a pure spin starves it).
                    guard try q.popAvail(into: chain) else { sched_yield(); continue }
                    withUnsafeMutableBytes(of: &scratch) { _ = chain.copyReadable(from: 0, into: $0) }
                    withUnsafeBytes(of: &scratch) { _ = chain.copyToWritable(at: 0, from: $0) }
                    q.pushUsed(chain.token, length: 8)
                    _ = q.needsNotification()
                } catch {
                    q.pushUsed(chain.token, length: 0)
                }
            }
        }
    }

    @Test func splitTwoThreads() throws {
        let mem = try DriverMemory(size: 4 << 20)
        let drv = SplitDriverQueue(memory: mem, size: 16, eventIdx: true, startIndex: 65000)
        let dev = try SplitQueue(size: 16, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true, lastAvailIdx: 65000)
        let stop = StopFlag()
        let thread = try Self.runDevice(dev, stop: stop)
        let rd = mem.allocate(64 * 8), wr = mem.allocate(64 * 8)
        var sent = 0, received = 0, mismatches = 0
        let start = monotonicNanoseconds()
        while received < Self.chains, monotonicNanoseconds() - start < Self.deadline {
            while sent < Self.chains, drv.freeCount >= 2 {
                let slot = UInt64(sent % 64) * 8
                mem.host(rd + slot).storeBytes(of: UInt64(sent), as: UInt64.self)
                guard drv.add(readable: [DriverBuffer(gpa: rd + slot, length: 8)],
                              writable: [DriverBuffer(gpa: wr + slot, length: 8)]) != nil else { break }
                sent += 1
                if sent % 3 == 0 { drv.publish() }
            }
            drv.publish()
            var progressed = false
            while let (_, len) = drv.popUsed() {
                let slot = UInt64(received % 64) * 8
                if len != 8 || mem.host(wr + slot).load(as: UInt64.self) != UInt64(received) { mismatches += 1 }
                received += 1
                progressed = true
            }
            if !progressed { sched_yield() }
        }
        stop.stopped.store(true, ordering: .relaxed)
        thread.join()
        #expect(received == Self.chains)
        #expect(mismatches == 0)
        #expect(!dev.isBroken)
    }

    @Test func packedTwoThreads() throws {
        let mem = try DriverMemory(size: 4 << 20)
        let drv = PackedDriverQueue(memory: mem, size: 16, eventIdx: true)
        let dev = try PackedQueue(size: 16, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true)
        let stop = StopFlag()
        let thread = try Self.runDevice(dev, stop: stop)
        let rd = mem.allocate(64 * 8), wr = mem.allocate(64 * 8)
        var sent = 0, received = 0, mismatches = 0
        let start = monotonicNanoseconds()
        while received < Self.chains, monotonicNanoseconds() - start < Self.deadline {
            while sent < Self.chains, drv.freeCount >= 2 {
                let slot = UInt64(sent % 64) * 8
                mem.host(rd + slot).storeBytes(of: UInt64(sent), as: UInt64.self)
                guard drv.add(readable: [DriverBuffer(gpa: rd + slot, length: 8)],
                              writable: [DriverBuffer(gpa: wr + slot, length: 8)]) != nil else { break }
                sent += 1
            }
            drv.kick()
            var progressed = false
            while let (_, len) = drv.popUsed() {
                let slot = UInt64(received % 64) * 8
                if len != 8 || mem.host(wr + slot).load(as: UInt64.self) != UInt64(received) { mismatches += 1 }
                received += 1
                progressed = true
            }
            if !progressed { sched_yield() }
        }
        stop.stopped.store(true, ordering: .relaxed)
        thread.join()
        #expect(received == Self.chains)
        #expect(mismatches == 0)
        #expect(!dev.isBroken)
    }
}
