import Histogram
import VhostUser
import VhostUserFrontend
import Virtio
import VirtioDriver
import VireoSys
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

/// Why `vireo-bench blk` could not run.
public enum BlkBenchError: Error, CustomStringConvertible, Sendable {
    case invalid([String])
    case frontend(String, VhostUserFrontendError)
    case system(SystemError)
    case device(String)

    public var description: String {
        switch self {
        case .invalid(let p): return p.joined(separator: "\n")
        case .frontend(let what, let e): return "\(what): \(e)"
        case .system(let e): return "\(e)"
        case .device(let s): return s
        }
    }
}

/// The virtio-blk load generator: connects to a vhost-user backend exactly
/// as a VMM would (memfd guest memory, SET_MEM_TABLE, split rings, kick and
/// call eventfds), negotiates like one, reads the geometry from the config
/// space, then runs one `BlkQueueWorker` thread per queue and gathers
/// latency, IOPS, MB/s, and the CPU and stats-file deltas of the daemons
/// over the measured window (the ramp excluded).
public struct BlkBench {
    /// The virtio features asked for (the backend's offer decides).
    public static let wantedFeatures: UInt64 = VirtioFeatures.version1 | VirtioFeatures.eventIdx
        | VirtioFeatures.indirectDesc | VirtioBlk.Feature.segMax | VirtioBlk.Feature.sizeMax
        | VirtioBlk.Feature.blockSize | VirtioBlk.Feature.flush | VirtioBlk.Feature.multiqueue
        | VirtioBlk.Feature.topology | VirtioBlk.Feature.discard | VirtioBlk.Feature.writeZeroes

    public var job: BlkJob
    public var label = ""
    /// Processes whose CPU time is sampled at the window's start and end, by name.
    public var pids: [(name: String, pid: Int32)] = []
    /// The initiator's stats file (its pid must be in `pids` as "initiator").
    public var initiatorStats: String?
    /// The target's stats file (`--stats target=PATH`): its data-path costs and copies.
    public var targetStats: String?
    /// Progress lines (stderr in the command).
    public var log: (String) -> Void = { _ in }

    public init(job: BlkJob) { self.job = job }

    /// What the device reported.
    public struct Geometry: Sendable {
        public var capacityBytes: UInt64
        public var blockSize: UInt32
        public var numQueues: Int
        public var features: UInt64
    }

    /// Runs the job; errors only when it could not start (I/O errors are in the result).
    public func run() throws(BlkBenchError) -> BlkResult {
        let problems = job.problems()
        guard problems.isEmpty else { throw .invalid(problems) }

        // Guest memory: rings + per-slot buffers for every queue.
        let perQueue = BlkQueueWorker.slotBytes(qd: job.queueDepth, blockSize: job.blockSize)
            + Self.ringBytes(Self.ringSize(qd: job.queueDepth, indirect: false)) + 4096
        let needed = job.queues * perQueue + (1 << 20)
        guard needed <= job.memoryBytes else {
            throw .invalid(["--memory \(job.memoryBytes) is too small: \(job.queues) queue(s) at qd \(job.queueDepth), bs \(job.blockSize) need \(needed) bytes"])
        }
        let memory: DriverMemory
        do { memory = try DriverMemory(size: (job.memoryBytes + 0x1F_FFFF) & ~0x1F_FFFF, gpa: 0x1_0000_0000) } catch {
            throw .device("guest memory: \(error)")
        }

        // Connect and negotiate like a VMM.
        var fe: VhostUserFrontend
        do { fe = try VhostUserFrontend(path: job.socket) } catch { throw .system(error) }
        defer { fe.close() }
        let geometry = try Self.handshake(fe)
        log("connected to \(job.socket): capacity \(geometry.capacityBytes) bytes, block \(geometry.blockSize), "
            + "\(geometry.numQueues) queue(s), features 0x\(String(fe.features, radix: 16))")
        guard fe.features & VirtioFeatures.version1 != 0 else { throw .device("the backend does not offer VIRTIO_F_VERSION_1") }
        if job.zeroesPercent > 0 && fe.features & VirtioBlk.Feature.writeZeroes == 0 {
            throw .device("--zeroes-percent: the backend does not offer VIRTIO_BLK_F_WRITE_ZEROES")
        }
        if job.discardPercent > 0 && fe.features & VirtioBlk.Feature.discard == 0 {
            throw .device("--discard-percent: the backend does not offer VIRTIO_BLK_F_DISCARD")
        }
        guard job.queues <= geometry.numQueues else {
            throw .invalid(["--queues \(job.queues) but the device has \(geometry.numQueues) queue(s)"])
        }
        guard job.blockSize % Int(geometry.blockSize) == 0 else {
            throw .invalid(["--bs \(job.blockSize) is not a multiple of the device's block size \(geometry.blockSize)"])
        }
        let span = min(job.spanBytes ?? geometry.capacityBytes, geometry.capacityBytes)
        let blocks = Int(span / UInt64(job.blockSize))
        let slice = blocks / job.queues
        guard slice >= 1 else { throw .invalid(["--span \(span) holds fewer blocks of \(job.blockSize) bytes than queues"]) }
        if job.verify && slice < job.queueDepth {
            throw .invalid(["--verify needs at least qd (\(job.queueDepth)) blocks per queue; the span gives \(slice)"])
        }
        do { try fe.setMemTable(memory) } catch { throw .frontend("SET_MEM_TABLE", error) }
        let indirect = fe.features & VirtioFeatures.indirectDesc != 0
        let eventIdx = fe.features & VirtioFeatures.eventIdx != 0
        var rings: [(SplitDriverQueue, VhostUserFrontend.Ring)] = []
        for q in 0..<job.queues {
            let dq = SplitDriverQueue(memory: memory, size: Self.ringSize(qd: job.queueDepth, indirect: indirect),
                                      eventIdx: eventIdx, indirectCapacity: 1)
            do { rings.append((dq, try fe.setUpRing(q, driver: dq))) } catch { throw .frontend("ring \(q) setup", error) }
        }
        let table = job.verify ? BlkVerifyTable(blocks: slice * job.queues) : nil

        // Timeline: start, ramp end (window start), end (window end).
        let statsReader = initiatorStats.map { StatsFileReader(path: $0, pid: pids.first { $0.name == "initiator" }?.pid) }
        let targetReader = targetStats.map { StatsFileReader(path: $0, pid: pids.first { $0.name == "target" }?.pid) }
        var targetStart: [String: Double]?, targetEnd: [String: Double]?
        var perStatsWrite: UInt64?
        // Only a daemon whose stats writer does not count its own allocations needs them measured:
        // two writes back to back with no I/O give what one write allocates (divided by the
        // writes between them, should a periodic one land there too).
        if let r = statsReader, r.read()?["vireo_stats_allocations_total"] == nil {
            if let a = r.fresh(), let b = r.fresh(),
               let x = a["vireo_process_allocations_total"], let y = b["vireo_process_allocations_total"], y >= x {
                let writes = max(1, (b["vireo_stats_sequence"] ?? 0) - (a["vireo_stats_sequence"] ?? 0))
                perStatsWrite = UInt64(((y - x) / writes).rounded())
            }
        }
        let start = monotonicNanoseconds() + 1_000_000
        let rampEnd = start + UInt64(job.rampSeconds * 1e9)
        let control = BlkRunControl(queues: job.queues, end: rampEnd + UInt64(job.runtimeSeconds * 1e9),
                                    parkLimitSeconds: job.reconnectSeconds + 30)
        var workers: [BlkQueueWorker] = []
        for (q, (dq, ring)) in rings.enumerated() {
            workers.append(BlkQueueWorker(index: q, job: job, queue: dq, kick: ring.kick, call: ring.call, indirect: indirect,
                                          table: table, sliceStart: q * slice, sliceBlocks: slice, rampEnd: rampEnd,
                                          control: control))
        }
        var threads: [OSThread] = []
        for w in workers {
            do { threads.append(try OSThread(name: "bench-q\(w.index)") { w.run() }) } catch {
                for t in threads { t.join() }
                throw .system(error)
            }
        }
        log("load running: \(job.queues) queue(s) at qd \(job.queueDepth)")

        // Until every worker returned: CPU samples and stats snapshots at the
        // window's start and end; the socket watched (a backend that goes
        // away is reconnected, or ends the run); the stop file checked.
        var cpuStart: [(String, Double?)] = [], cpuEnd: [(String, Double?)] = []
        var statsStart: [String: Double]?, statsEnd: [String: Double]?
        var sampledStart = false, sampledEnd = false
        var reconnects = 0
        var connectionProblem: String?
        while !control.allFinished {
            let now = monotonicNanoseconds()
            if !sampledStart && now >= rampEnd {
                cpuStart = pids.map { ($0.name, ProcessCPU.seconds(pid: $0.pid)) }
                statsStart = statsReader?.fresh()
                targetStart = targetReader?.fresh()
                sampledStart = true
            }
            if let stop = job.stopFile, now < control.end.load(ordering: .relaxed), access(stop, F_OK) == 0 {
                control.end.store(max(now, rampEnd), ordering: .relaxed)
                log("\(stop) exists: the run ends now")
            }
            let end = control.end.load(ordering: .relaxed)
            if sampledStart && !sampledEnd && now >= end {
                cpuEnd = pids.map { ($0.name, ProcessCPU.seconds(pid: $0.pid)) }
                statsEnd = statsReader?.fresh()
                targetEnd = targetReader?.fresh()
                sampledEnd = true
            }
            let next = !sampledStart ? rampEnd : !sampledEnd ? end : UInt64.max
            let waitMilliseconds = Int32(min(50, next > now ? (next - now) / 1_000_000 : 0))
            guard connectionProblem == nil else { BlkRunControl.sleepMilliseconds(50); continue }
            guard fe.waitForClose(timeoutMilliseconds: waitMilliseconds) else { continue }

            // The backend went away: park the workers, connect again, resume them.
            let lost = monotonicNanoseconds()
            guard control.pauseAll(timeoutSeconds: 10, wake: { for w in workers { w.call.signal() } }) else {
                connectionProblem = "the backend closed the connection and the queue workers did not stop within 10 s"
                control.resumeAll(abandon: true)
                continue
            }
            fe.close()
            let inFlight = workers.reduce(0) { $0 + $1.requestsInFlight }
            guard job.reconnectSeconds > 0 else {
                connectionProblem = "the backend closed the connection (no --reconnect)"
                control.resumeAll(abandon: true)
                continue
            }
            switch reconnect(memory: memory, drivers: rings.map(\.0), bases: workers.map(\.availIndex), like: geometry,
                             deadline: lost + UInt64(job.reconnectSeconds * 1e9)) {
            case .success(let (newFrontend, newRings)):
                fe = newFrontend
                for (w, r) in zip(workers, newRings) { w.adopt(kick: r.kick, call: r.call) }
                reconnects += 1
                control.resumeAll(abandon: false)
                log("backend closed the connection with \(inFlight) request(s) in flight; reconnected after "
                    + "\((monotonicNanoseconds() - lost) / 1_000_000) ms (reconnect \(reconnects)); issuing them again")
            case .failure(let why):
                connectionProblem = why.description
                control.resumeAll(abandon: true)
            }
        }
        for t in threads { t.join() }
        let end = control.end.load(ordering: .relaxed)
        if !sampledStart { cpuStart = pids.map { ($0.name, nil) } }
        if !sampledEnd { cpuEnd = pids.map { ($0.name, ProcessCPU.seconds(pid: $0.pid)) } }

        var result = BlkResult(label: label, job: job, seconds: end > rampEnd ? Double(end - rampEnd) / 1e9 : 0, ios: 0,
                               bytes: 0, errors: 0, latencyMicroseconds: [], cpuSeconds: [])
        result.reconnects = reconnects
        if let connectionProblem { result.problems.append(connectionProblem) }
        var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                  numberOfSignificantValueDigits: .three)
        for w in workers {
            h.add(w.histogram)
            result.ios += w.ios
            result.bytes += w.bytes
            result.errors += w.errors
            result.verifiedBlocks += w.verifiedBlocks
            result.reissued += w.reissued
            result.acknowledgedWrites += w.acknowledgedWrites
            result.acknowledgedZeroes += w.acknowledgedZeroes
            result.acknowledgedDiscards += w.acknowledgedDiscards
            if w.flushed == true { result.flushedQueues += 1 }
            if w.flushed == false { result.problems.append("queue \(w.index): the FLUSH after the read-back failed") }
            if w.ioErrors > 0 { result.problems.append("queue \(w.index): \(w.ioErrors) request(s) completed with an error status") }
            if w.mismatches > 0 {
                result.problems.append("queue \(w.index): \(w.mismatches) read(s) returned data that does not match the last write"
                                       + " (first at offset \(w.firstMismatchOffset ?? 0))")
            }
            if let p = w.protocolProblem { result.problems.append(p) }
            if w.stuckRequests > 0 { result.problems.append("queue \(w.index): \(w.stuckRequests) request(s) never completed") }
        }
        if let path = job.writtenMap, let table {
            do { try BlkWrittenMap(table: table, blockSize: job.blockSize).write(to: path) } catch {
                result.problems.append("\(error)")
            }
        }
        if h.totalCount > 0 {
            result.latencyMicroseconds = [
                ("min", Double(h.min) / 1e3), ("mean", h.mean / 1e3), ("p50", Double(h.valueAtPercentile(50)) / 1e3),
                ("p90", Double(h.valueAtPercentile(90)) / 1e3), ("p99", Double(h.valueAtPercentile(99)) / 1e3),
                ("p999", Double(h.valueAtPercentile(99.9)) / 1e3), ("max", Double(h.max) / 1e3),
            ]
        }
        for ((name, a), (_, b)) in zip(cpuStart, cpuEnd) {
            if let a, let b { result.cpuSeconds.append((name, b - a)) } else {
                result.problems.append("cpu of \(name): /proc/PID/stat unreadable")
            }
        }
        if let s0 = statsStart, let s1 = statsEnd { result.costs.append(("initiator", BlkResult.costs(s0, s1))) }
        if targetReader != nil {
            if let t0 = targetStart, let t1 = targetEnd {
                result.costs.append(("target", BlkResult.costs(t0, t1)))
                result.targetPayloadBytesCopied = StatsFileReader.delta("vireo_target_payload_bytes_copied_total", from: t0, to: t1)
            } else {
                result.warnings.append("target stats file \(targetStats!): no fresh file after SIGUSR1 (is --pid target=PID right?)")
            }
        }
        if statsReader != nil {
            if let s0 = statsStart, let s1 = statsEnd {
                result.payloadBytesCopied = StatsFileReader.delta("vireo_initiator_payload_bytes_copied_total", from: s0, to: s1)
                if s0["vireo_process_allocations_total"] != nil, s1["vireo_process_allocations_total"] != nil {
                    // Every stats write in the window (the one at its end, and any
                    // periodic one) costs the initiator `perStatsWrite` allocations.
                    let raw = StatsFileReader.delta("vireo_process_allocations_total", from: s0, to: s1)
                    let writes = max(1, StatsFileReader.delta("vireo_stats_sequence", from: s0, to: s1))
                    if s0["vireo_stats_allocations_total"] != nil, s1["vireo_stats_allocations_total"] != nil {
                        // Exact: the stats writer counts its own allocations.
                        let own = StatsFileReader.delta("vireo_stats_allocations_total", from: s0, to: s1)
                        result.allocations = raw - min(raw, own)
                        result.allocationsPerStatsWrite = own / writes
                    } else {
                        // An older daemon: subtract what one write was measured to cost.
                        result.allocations = raw - min(raw, writes * (perStatsWrite ?? 0))
                        result.allocationsPerStatsWrite = perStatsWrite
                    }
                    result.allocationsRaw = raw
                }
            } else {
                result.warnings.append("initiator stats file \(initiatorStats!): no fresh file after SIGUSR1 (is --pid initiator=PID right?)")
            }
        }
        return result
    }

    /// Negotiates like a VMM and reads the geometry.
    static func handshake(_ fe: VhostUserFrontend) throws(BlkBenchError) -> Geometry {
        do { try fe.negotiate(wanted: Self.wantedFeatures) } catch { throw .frontend("negotiation", error) }
        return try Self.geometry(fe)
    }

    /// Connects again after the backend closed the socket, as a VMM does:
    /// retries every 100 ms until `deadline`, negotiates, and must find the
    /// same device (capacity, block size, queues, ring features); then the
    /// same memory table and rings, each resumed at `bases[q]` (the next
    /// avail index; the used index is read from the ring).
    func reconnect(memory: DriverMemory, drivers: [SplitDriverQueue], bases: [UInt16], like first: Geometry,
                   deadline: UInt64) -> Result<(VhostUserFrontend, [VhostUserFrontend.Ring]), BlkBenchError> {
        let ringFeatures = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc
        var last = "nothing listens at \(job.socket)"
        while monotonicNanoseconds() < deadline {
            do {
                let fe = try VhostUserFrontend(path: job.socket)
                do throws(BlkBenchError) {
                    let g = try Self.handshake(fe)
                    guard g.capacityBytes == first.capacityBytes, g.blockSize == first.blockSize, g.numQueues >= job.queues,
                          g.features & ringFeatures == first.features & ringFeatures else {
                        fe.close()
                        return .failure(.device("the backend came back as another device: capacity \(g.capacityBytes) bytes, block "
                                        + "\(g.blockSize), \(g.numQueues) queue(s), features 0x\(String(g.features, radix: 16))"))
                    }
                    do { try fe.setMemTable(memory) } catch { throw .frontend("SET_MEM_TABLE", error) }
                    var rings: [VhostUserFrontend.Ring] = []
                    for (q, dq) in drivers.enumerated() {
                        do { rings.append(try fe.setUpRing(q, driver: dq, base: bases[q])) } catch { throw .frontend("ring \(q) setup", error) }
                    }
                    return .success((fe, rings))
                } catch {
                    fe.close()
                    last = "\(error)"
                }
            } catch {
                last = "\(error)"
            }
            BlkRunControl.sleepMilliseconds(100)
        }
        return .failure(.device("the backend closed the connection and did not come back within \(job.reconnectSeconds) s (last: \(last))"))
    }

    /// Reads capacity, block size and queue count from the config space.
    static func geometry(_ fe: VhostUserFrontend) throws(BlkBenchError) -> Geometry {
        let cfg: [UInt8]
        do { cfg = try fe.config(size: 36) } catch { throw .frontend("GET_CONFIG", error) }
        let capacity = cfg.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        var bs = cfg.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 20, as: UInt32.self)) }
        if fe.features & VirtioBlk.Feature.blockSize == 0 || bs < 512 || bs & (bs - 1) != 0 { bs = 512 }
        var queues = 1
        if fe.features & VirtioBlk.Feature.multiqueue != 0 {
            queues = Int(cfg.withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: 34, as: UInt16.self)) })
        }
        guard capacity > 0, capacity <= UInt64.max / VirtioBlk.sectorSize else {
            throw .device("the device reports a capacity of \(capacity) sectors")
        }
        return Geometry(capacityBytes: capacity * VirtioBlk.sectorSize, blockSize: bs, numQueues: max(queues, 1),
                        features: fe.features)
    }

    /// Ring size for `qd` requests: one descriptor each (indirect) or three.
    static func ringSize(qd: Int, indirect: Bool) -> UInt16 {
        let need = indirect ? qd : 3 * qd
        var n = 2
        while n < need { n <<= 1 }
        return UInt16(min(n, 32768))
    }

    static func ringBytes(_ size: UInt16) -> Int {
        RingLayout.splitDescriptorTableBytes(size: size) + RingLayout.splitAvailRingBytes(size: size)
            + RingLayout.splitUsedRingBytes(size: size) + Int(size) * 16 + 64
    }
}
