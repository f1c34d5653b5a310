import Histogram
import Synchronization
import Virtio
import VirtioDriver
import VhostUser
import VireoSys

/// One queue of `vireo-bench blk`: its own OS thread keeps `qd` requests in
/// flight on one virtqueue. Every per-request buffer (header, data, status,
/// indirect table) lives in guest memory, laid out once; the loop submits by
/// writing an avail-ring entry, publishes in batches, kicks when the device
/// asks, spins briefly on the used ring and then sleeps on the call eventfd.
/// Latencies go to a per-thread HdrHistogram. Nothing on the loop allocates.
final class BlkQueueWorker: @unchecked Sendable {
    // SAFETY: touched by the worker thread only between `start` and `join`;
    // the main thread reads the results after `join`.
    let index: Int
    let job: BlkJob
    let ring: BlkDriverRing
    /// The eventfds of the current connection (swapped by `adopt` while parked).
    private(set) var kick: SharedEventFD
    private(set) var call: SharedEventFD
    let indirect: Bool
    let memory: DriverMemory
    let table: BlkVerifyTable?
    /// Blocks [sliceStart, sliceStart + sliceBlocks) of the span belong to this queue.
    let sliceStart: Int, sliceBlocks: Int
    let rampEnd: UInt64
    /// Shared with the main thread: the window's end (may come earlier) and the pause handshake.
    let control: BlkRunControl
    @inline(__always) var end: UInt64 { control.end.load(ordering: .relaxed) }

    // Per-slot state, preallocated.
    private let qd: Int
    private let headerHost: UnsafeMutableRawPointer
    private let statusHost: UnsafeMutableRawPointer
    private let dataHost: UnsafeMutableRawPointer
    /// Each slot's data descriptor: its flags (and, 4 bytes before, its length) are set per request.
    private let dataFlags: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private let submitted: UnsafeMutablePointer<UInt64>
    private let slotBlock: UnsafeMutablePointer<Int>
    /// The slot's request changes its block (WRITE, WRITE_ZEROES or DISCARD).
    private let slotWrite: UnsafeMutablePointer<Bool>
    private let slotType: UnsafeMutablePointer<VirtioBlk.RequestType>
    private let slotGeneration: UnsafeMutablePointer<UInt32>
    private let slotBusy: UnsafeMutablePointer<Bool>
    private var rng: XorShift
    private var seqCursor = 0
    private var sweepCursor = 0
    private var sweeping = false
    private let poller = Poller(capacity: 1)

    // Results (read after join).
    private(set) var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                                   numberOfSignificantValueDigits: .three)
    private(set) var ios: UInt64 = 0
    private(set) var bytes: UInt64 = 0
    private(set) var errors: UInt64 = 0
    private(set) var ioErrors: UInt64 = 0
    private(set) var mismatches: UInt64 = 0
    private(set) var verifiedBlocks: UInt64 = 0
    private(set) var firstMismatchOffset: UInt64?
    private(set) var protocolProblem: String?
    private(set) var stuckRequests = 0
    private(set) var kicks: UInt64 = 0
    private(set) var sleeps: UInt64 = 0
    /// Requests in flight at a disconnect, placed again on the new connection's ring.
    private(set) var reissued: UInt64 = 0
    /// Writes completed OK (acknowledged to the "guest").
    private(set) var acknowledgedWrites: UInt64 = 0
    /// Of those, WRITE_ZEROES and DISCARD requests.
    private(set) var acknowledgedZeroes: UInt64 = 0
    private(set) var acknowledgedDiscards: UInt64 = 0
    /// The FLUSH after the read-back completed OK (nil: none was sent).
    private(set) var flushed: Bool?

    static let slotHeaderBytes = 16, slotStatusBytes = 8, indirectTableBytes = 48

    /// Guest memory bytes one queue needs beside its rings.
    static func slotBytes(qd: Int, blockSize: Int) -> Int {
        qd * (slotHeaderBytes + slotStatusBytes + indirectTableBytes + blockSize) + 3 * 4096
    }

    init(index: Int, job: BlkJob, queue: SplitDriverQueue, kick: SharedEventFD, call: SharedEventFD, indirect: Bool,
         table: BlkVerifyTable?, sliceStart: Int, sliceBlocks: Int, rampEnd: UInt64, control: BlkRunControl) {
        self.index = index
        self.job = job
        ring = BlkDriverRing(queue: queue)
        self.kick = kick
        self.call = call
        self.indirect = indirect
        memory = queue.memory
        self.table = table
        self.sliceStart = sliceStart
        self.sliceBlocks = sliceBlocks
        self.rampEnd = rampEnd
        self.control = control
        qd = job.queueDepth
        rng = XorShift(seed: job.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        seqCursor = 0

        let bs = job.blockSize
        let headerGPA = memory.allocate(qd * Self.slotHeaderBytes, alignment: 64)
        let statusGPA = memory.allocate(qd * Self.slotStatusBytes, alignment: 64)
        let dataGPA = memory.allocate(qd * bs, alignment: 4096)
        let tableGPA = indirect ? memory.allocate(qd * Self.indirectTableBytes, alignment: 64) : 0
        headerHost = memory.host(headerGPA)
        statusHost = memory.host(statusGPA)
        dataHost = memory.host(dataGPA)
        dataFlags = .allocate(capacity: qd)
        submitted = .allocate(capacity: qd); submitted.initialize(repeating: 0, count: qd)
        slotBlock = .allocate(capacity: qd); slotBlock.initialize(repeating: 0, count: qd)
        slotWrite = .allocate(capacity: qd); slotWrite.initialize(repeating: false, count: qd)
        slotType = .allocate(capacity: qd); slotType.initialize(repeating: .in, count: qd)
        slotGeneration = .allocate(capacity: qd); slotGeneration.initialize(repeating: 0, count: qd)
        slotBusy = .allocate(capacity: qd); slotBusy.initialize(repeating: false, count: qd)
        memory.fill(dataGPA, count: qd * bs, byte: 0)

        // Lay out every slot's chain once: header (readable), data, status (writable).
        for s in 0..<qd {
            let h = headerGPA + UInt64(s * Self.slotHeaderBytes)
            let d = dataGPA + UInt64(s * bs)
            let st = statusGPA + UInt64(s * Self.slotStatusBytes)
            if indirect {
                let t = tableGPA + UInt64(s * Self.indirectTableBytes)
                queue.writeDescriptor(at: t, addr: h, len: 16, flags: RingLayout.descFlagNext, next: 1)
                queue.writeDescriptor(at: t + 16, addr: d, len: UInt32(bs), flags: RingLayout.descFlagNext, next: 2)
                queue.writeDescriptor(at: t + 32, addr: st, len: 1, flags: RingLayout.descFlagWrite, next: 0)
                queue.writeDescriptor(UInt16(s), addr: t, len: 48, flags: RingLayout.descFlagIndirect, next: 0)
                dataFlags[s] = memory.host(t + 16 + 12)
            } else {
                let base = UInt16(3 * s)
                queue.writeDescriptor(base, addr: h, len: 16, flags: RingLayout.descFlagNext, next: base + 1)
                queue.writeDescriptor(base + 1, addr: d, len: UInt32(bs), flags: RingLayout.descFlagNext, next: base + 2)
                queue.writeDescriptor(base + 2, addr: st, len: 1, flags: RingLayout.descFlagWrite, next: 0)
                dataFlags[s] = memory.host(queue.descGPA + UInt64(base + 1) * 16 + 12)
            }
        }
        _ = poller.add(call.rawValue)
    }

    deinit {
        dataFlags.deallocate(); submitted.deallocate(); slotBlock.deallocate()
        slotWrite.deallocate(); slotType.deallocate(); slotGeneration.deallocate(); slotBusy.deallocate()
    }

    /// Runs the load until `end`, then (with --verify) reads back every block it wrote.
    func run() {
        defer { control.finish(index) }
        ring.disableCalls()
        runPhase()
        if table != nil, protocolProblem == nil, stuckRequests == 0 {
            sweeping = true
            sweepCursor = 0
            runPhase()
            if protocolProblem == nil, stuckRequests == 0 { flush() }
        }
    }

    /// One FLUSH on slot 0's chain (its data descriptor is ignored, virtio 1.x §5.2.6): every
    /// write acknowledged before it is durable once it completes OK. Waits up to 60 s.
    private func flush() {
        let h = headerHost
        h.storeBytes(of: VirtioBlk.RequestType.flush.rawValue.littleEndian, as: UInt32.self)
        h.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
        h.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)
        dataFlags[0].storeBytes(of: RingLayout.descFlagNext.littleEndian, as: UInt16.self)
        (dataFlags[0] - 4).storeBytes(of: UInt32(job.blockSize).littleEndian, as: UInt32.self)
        statusHost.storeBytes(of: UInt8(0xFF), as: UInt8.self)
        ring.add(head: 0)
        publish()
        let deadline = monotonicNanoseconds() + 60_000_000_000
        while !ring.hasUsed && monotonicNanoseconds() < deadline {
            _ = ring.enableCalls()
            if ring.hasUsed { break }
            _ = try? poller.wait(timeoutMilliseconds: 100)
            call.drain()
        }
        ring.disableCalls()
        guard ring.hasUsed else {
            stuckRequests += 1
            errors += 1
            return
        }
        _ = ring.popUsed()
        let ok = statusHost.load(as: UInt8.self) == VirtioBlk.Status.ok.rawValue
        flushed = ok
        if !ok { ioErrors += 1; errors += 1 }
    }

    /// The next avail index the backend should take (the new connection's
    /// SET_VRING_BASE); read by the main thread while this worker is parked.
    var availIndex: UInt16 { ring.availIdx }

    /// Requests submitted and not completed (read by the main thread while parked).
    var requestsInFlight: Int { (0..<qd).count(where: { slotBusy[$0] }) }

    /// Main thread, while parked: the new connection's eventfds.
    func adopt(kick: SharedEventFD, call: SharedEventFD) {
        self.kick = kick
        self.call = call
        poller.set(0, fd: call.rawValue)
    }

    // MARK: the loop

    private func runPhase() {
        var inflight = 0
        var now = monotonicNanoseconds()
        for s in 0..<qd where canSubmit(now) {
            if prepare(s, now: now) { inflight += 1 }
            now = monotonicNanoseconds()
        }
        publish()
        var idle = 0
        var drainDeadline: UInt64 = 0
        while inflight > 0 {
            if control.pauseRequested(index) {
                guard let n = pauseAndResume() else { return }
                inflight = n
                drainDeadline = 0
                idle = 0
                continue
            }
            var reaped = 0
            while ring.hasUsed {
                let (id, _) = ring.popUsed()
                guard let s = slot(for: id) else {
                    protocolProblem = "used id \(id) names no request in flight on queue \(index)"
                    errors += 1
                    return
                }
                now = monotonicNanoseconds()
                complete(s, now: now)
                reaped += 1
                if canSubmit(now), prepare(s, now: now) {} else { inflight -= 1 }
            }
            if reaped > 0 {
                publish()
                idle = 0
                continue
            }
            idle += 1
            if idle <= job.spinIterations { continue }
            if ring.enableCalls() {
                ring.disableCalls()
                continue
            }
            now = monotonicNanoseconds()
            if now >= end && !sweeping {
                if drainDeadline == 0 { drainDeadline = now + 10_000_000_000 }
                if now >= drainDeadline {
                    stuckRequests = inflight
                    errors += UInt64(inflight)
                    return
                }
            }
            let wait = now < end ? min((end - now) / 1_000_000 + 1, 1000) : 1000
            sleeps += 1
            _ = try? poller.wait(timeoutMilliseconds: Int32(wait))
            call.drain()
            ring.disableCalls()
            idle = 0
        }
    }

    /// The backend went away. Collects the used entries it wrote before it
    /// died (those requests completed), parks until the main thread has
    /// connected again, then places every request still in flight on the new
    /// connection's ring again (same slot, same data: a write that was never
    /// acknowledged is re-issued with its own generation) and fills idle
    /// slots. Returns the requests now in flight, or nil when the backend
    /// never came back (they are counted stuck).
    private func pauseAndResume() -> Int? {
        // A backend that stops gracefully closes its socket before its queues
        // stop: collect until the used ring has been still for 100 ms (2 s at most).
        var now = monotonicNanoseconds()
        var lastSeen = now
        let giveUp = now + 2_000_000_000
        while now - lastSeen < 100_000_000 && now < giveUp {
            while ring.hasUsed {
                let (id, _) = ring.popUsed()
                guard let s = slot(for: id) else {
                    protocolProblem = "used id \(id) names no request in flight on queue \(index)"
                    errors += 1
                    _ = control.park(index)
                    return nil
                }
                complete(s, now: now)
                lastSeen = now
            }
            BlkRunControl.sleepMilliseconds(5)
            now = monotonicNanoseconds()
        }
        guard control.park(index) else {
            stuckRequests = requestsInFlight
            errors += UInt64(stuckRequests)
            return nil
        }
        now = monotonicNanoseconds()
        var inflight = 0
        for s in 0..<qd {
            if slotBusy[s] {
                ring.add(head: indirect ? UInt16(s) : UInt16(3 * s))
                reissued += 1
                inflight += 1
            } else if canSubmit(now), prepare(s, now: now) {
                inflight += 1
            }
        }
        _ = ring.publish()
        kick.signal()
        kicks &+= 1
        return inflight
    }

    @inline(__always) private func publish() {
        if ring.publish() {
            kick.signal()
            kicks &+= 1
        }
    }

    @inline(__always) private func slot(for id: UInt32) -> Int? {
        let s = indirect ? Int(id) : Int(id) / 3
        guard s < qd, indirect || id % 3 == 0, slotBusy[s] else { return nil }
        return s
    }

    @inline(__always) private func canSubmit(_ now: UInt64) -> Bool {
        sweeping ? sweepCursor < sliceBlocks : now < end
    }

    /// Picks the next block and direction, writes the header (and pattern),
    /// and adds the slot's head to the avail ring. False when the sweep has nothing left.
    @inline(__always) private func prepare(_ s: Int, now: UInt64) -> Bool {
        let bs = job.blockSize
        let block: Int
        let write: Bool
        if sweeping {
            guard let table else { return false }
            var b = sweepCursor
            while b < sliceBlocks && table[sliceStart + b] == 0 { b += 1 }
            sweepCursor = b + 1
            guard b < sliceBlocks else { return false }
            block = sliceStart + b
            write = false
        } else {
            switch job.pattern {
            case .randread: write = false
            case .randwrite, .write: write = true
            case .read: write = false
            case .randrw: write = rng.next(below: 100) >= UInt64(job.readPercent)
            }
            var b = job.pattern.isRandom ? Int(rng.next(below: UInt64(sliceBlocks))) : seqCursor
            if let table {
                while table.isBusy(sliceStart + b) { b = b + 1 == sliceBlocks ? 0 : b + 1 }
            }
            if !job.pattern.isRandom { seqCursor = b + 1 == sliceBlocks ? 0 : b + 1 }
            block = sliceStart + b
        }
        var type = write ? VirtioBlk.RequestType.out : .in
        if write && job.zeroesPercent + job.discardPercent > 0 {
            let r = Int(rng.next(below: 100))
            if r < job.zeroesPercent { type = .writeZeroes } else if r < job.zeroesPercent + job.discardPercent { type = .discard }
        }
        let offset = UInt64(block) * UInt64(bs)
        let data = dataHost + s * bs
        if let table {
            let g = table[block]
            if write {
                // After WRITE_ZEROES the block reads as zeros; after DISCARD it is unknown (0).
                let n = type == .writeZeroes ? BlkVerifyTable.zeroed : type == .discard ? 0 : BlkVerifyTable.nextGeneration(g)
                if type == .out { BlkVerifyTable.fill(data, count: bs, offset: offset, generation: n) }
                slotGeneration[s] = n
            } else {
                slotGeneration[s] = g
                data.initializeMemory(as: UInt8.self, repeating: 0xA5, count: bs)
            }
            table[block] = g | BlkVerifyTable.busy
        }
        let h = headerHost + s * Self.slotHeaderBytes
        h.storeBytes(of: type.rawValue.littleEndian, as: UInt32.self)
        h.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
        let sector = offset / VirtioBlk.sectorSize
        var dataLength = UInt32(bs)
        if type == .writeZeroes || type == .discard {
            // The data is one 16-byte range (§5.2.6: le64 sector, le32 num_sectors, le32 flags);
            // the header's sector is not used.
            h.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)
            data.storeBytes(of: sector.littleEndian, as: UInt64.self)
            data.storeBytes(of: UInt32(UInt64(bs) / VirtioBlk.sectorSize).littleEndian, toByteOffset: 8, as: UInt32.self)
            data.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
            dataLength = 16
        } else {
            h.storeBytes(of: sector.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        (dataFlags[s] - 4).storeBytes(of: dataLength.littleEndian, as: UInt32.self)
        dataFlags[s].storeBytes(of: (RingLayout.descFlagNext | (write ? 0 : RingLayout.descFlagWrite)).littleEndian,
                                as: UInt16.self)
        statusHost.storeBytes(of: UInt8(0xFF), toByteOffset: s * Self.slotStatusBytes, as: UInt8.self)
        slotBlock[s] = block
        slotWrite[s] = write
        slotType[s] = type
        submitted[s] = now
        slotBusy[s] = true
        ring.add(head: indirect ? UInt16(s) : UInt16(3 * s))
        return true
    }

    /// Accounts a completed slot: status, pattern check, latency (inside the measured window only).
    @inline(__always) private func complete(_ s: Int, now: UInt64) {
        slotBusy[s] = false
        let status = statusHost.load(fromByteOffset: s * Self.slotStatusBytes, as: UInt8.self)
        let ok = status == VirtioBlk.Status.ok.rawValue
        if !ok {
            ioErrors += 1
            errors += 1
        } else if slotWrite[s] {
            acknowledgedWrites += 1
            if slotType[s] == .writeZeroes { acknowledgedZeroes += 1 } else if slotType[s] == .discard { acknowledgedDiscards += 1 }
        }
        if let table {
            let block = slotBlock[s]
            let g = slotGeneration[s]
            if slotWrite[s] {
                table[block] = ok ? g : 0
            } else {
                table[block] = g
                if ok && g != 0 {
                    let bs = job.blockSize
                    if BlkVerifyTable.check(dataHost + s * bs, count: bs, offset: UInt64(block) * UInt64(bs), generation: g) {
                        verifiedBlocks += 1
                    } else {
                        mismatches += 1
                        errors += 1
                        if firstMismatchOffset == nil { firstMismatchOffset = UInt64(block) * UInt64(bs) }
                    }
                }
            }
        }
        if !sweeping, now >= rampEnd, now < end {
            ios += 1
            bytes += UInt64(job.blockSize)
            _ = histogram.record(min(now &- submitted[s], histogram.highestTrackableValue))
        }
    }
}
