import Synchronization
import VireoSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The virtio-net load generator (`vireo-bench net`): two NICs driven as a
/// VMM drives them (`NetPort`), one sending frames to the other's MAC
/// (`NetSender`), one receiving and checking them (`NetReceiver`), each on
/// its own OS thread. Before measuring it waits for link up on both, sends a
/// hello frame from the receiving NIC to the sending one so the switch
/// between them learns its MAC, then measures `runtime` seconds after `ramp`.
public final class NetLoad {
    public let config: NetLoadConfig
    private let stop = Stop()

    /// The flag both threads watch (set to end the run).
    final class Stop: Sendable {
        let flag = Atomic<Bool>(false)
    }

    public init(config: NetLoadConfig) throws(NetLoadError) {
        try config.validate()
        self.config = config
    }

    /// Runs the load and returns the measurement. Progress lines go to `log`.
    public func run(log: (String) -> Void = { _ in }) throws(NetLoadError) -> NetLoadResult {
        let c = config
        let txPort = try NetPort(socket: c.txSocket, queueSize: c.queueSize, memoryBytes: c.memoryBytes, frameBytes: c.frameBytes)
        defer { txPort.close() }
        let rxPort = try NetPort(socket: c.rxSocket, queueSize: c.queueSize, memoryBytes: c.memoryBytes, frameBytes: c.frameBytes)
        defer { rxPort.close() }
        if c.frameBytes > rxPort.rxBufferBytes - NetFrameLayout.headerBytes {
            throw .invalid("frame of \(c.frameBytes) bytes exceeds the receiving NIC's MTU \(rxPort.mtu) + 18")
        }
        log("tx \(c.txSocket): mac \(NetFrameLayout.macText(txPort.mac)), MTU \(txPort.mtu); rx \(c.rxSocket): mac \(NetFrameLayout.macText(rxPort.mac)), MTU \(rxPort.mtu)")
        try txPort.waitForLink(timeoutMilliseconds: c.setupTimeoutMilliseconds)
        try rxPort.waitForLink(timeoutMilliseconds: c.setupTimeoutMilliseconds)
        rxPort.postReceiveBuffers(Int(rxPort.rx.size))
        txPort.postReceiveBuffers(Int(txPort.rx.size))
        // The switch must learn the receiving MAC before the load, or every frame floods (and a
        // flood is dropped where there is no credit, never held): hello until the sender sees one.
        var helloSeen = false
        for attempt in 1...5 where !helloSeen {
            helloSeen = try sendHello(from: rxPort, to: txPort)
            if !helloSeen { log("hello frame \(attempt) not seen by the sending NIC within 1 s; sending another") }
        }
        log(helloSeen ? "hello frame rx → tx delivered (the switch learned the receiving MAC)"
                      : "hello frame not seen by the sending NIC in 5 tries (frames may flood)")

        let sender = NetSender(port: txPort, destination: rxPort.mac, spinNanoseconds: c.spinNanoseconds)
        let receiver = NetReceiver(port: rxPort, source: txPort.mac, spinNanoseconds: c.spinNanoseconds)
        stop.flag.store(false, ordering: .relaxed)
        let rxThread: OSThread, txThread: OSThread
        do {
            rxThread = try OSThread(name: "vbench-net-rx") { [stop] in receiver.run(stop: stop.flag) }
        } catch { throw .system("pthread_create", "\(error)") }
        do {
            txThread = try OSThread(name: "vbench-net-tx") { [stop] in sender.run(stop: stop.flag) }
        } catch {
            self.stop.flag.store(true, ordering: .relaxed)
            rxThread.join()
            throw .system("pthread_create", "\(error)")
        }
        defer {
            self.stop.flag.store(true, ordering: .relaxed)
            txThread.join()
            rxThread.join()
        }
        let statsReader = c.targetStats.map { StatsFileReader(path: $0, pid: c.pids.first { $0.name == "target" }?.pid) }
        sleepSeconds(c.ramp)
        let start = snapshot(sender, receiver)
        let statsStart = statsReader?.fresh()
        sleepSeconds(c.runtime)
        let end = snapshot(sender, receiver)
        let statsEnd = statsReader?.fresh()
        self.stop.flag.store(true, ordering: .relaxed)
        txThread.join()
        rxThread.join()
        var result = NetLoadResult(config: c, start: start, end: end, helloDelivered: helloSeen,
                                   kicks: txPort.tx.kicks + rxPort.rx.kicks, sleeps: (txPort.tx.sleeps, rxPort.rx.sleeps),
                                   senderReceived: sender.received.load(ordering: .relaxed),
                                   deviceErrors: sender.bogusCompletions.load(ordering: .relaxed))
        if let a = statsStart, let b = statsEnd {
            result.switchDrops = StatsFileReader.delta("vireo_target_network_drops_total", from: a, to: b)
            result.switchBytesCopied = StatsFileReader.delta("vireo_target_network_payload_bytes_copied_total", from: a, to: b)
        } else if c.targetStats != nil {
            log("target stats file \(c.targetStats!): no fresh file after SIGUSR1 (switch drops not measured)")
        }
        return result
    }

    /// Counters and CPU times at one instant.
    struct Snapshot {
        var time: UInt64
        var sent: UInt64
        var frames: UInt64
        var bytes: UInt64
        var corrupt: UInt64
        var outOfOrder: UInt64
        var foreign: UInt64
        var gaps: UInt64
        var cpu: [String: Double]
        /// This process (the load generator itself), seconds.
        var selfCPU: Double
    }

    private func snapshot(_ s: NetSender, _ r: NetReceiver) -> Snapshot {
        var cpu: [String: Double] = [:]
        for p in config.pids { if let v = ProcessCPU.seconds(pid: p.pid) { cpu[p.name] = v } }
        return Snapshot(time: monotonicNanoseconds(), sent: s.sent.load(ordering: .relaxed),
                        frames: r.frames.load(ordering: .relaxed), bytes: r.bytes.load(ordering: .relaxed),
                        corrupt: r.corrupt.load(ordering: .relaxed), outOfOrder: r.outOfOrder.load(ordering: .relaxed),
                        foreign: r.foreign.load(ordering: .relaxed), gaps: r.gaps.load(ordering: .relaxed), cpu: cpu,
                        selfCPU: Double(processCPUTimeNanoseconds()) / 1e9)
    }

    /// Sends one hello frame from `from` to `to` (so the switch learns
    /// `from`'s MAC); returns whether `to` received it within a second.
    private func sendHello(from: NetPort, to: NetPort) throws(NetLoadError) -> Bool {
        NetFrameLayout.writeTemplate(from.txBuffer(0), frameBytes: from.frameBytes, dst: to.mac, src: from.mac,
                                     magic: NetFrameLayout.helloMagic)
        from.tx.post(0)
        from.tx.publish()
        let deadline = monotonicNanoseconds() + 1_000_000_000
        var sent = false, seen = false
        while monotonicNanoseconds() < deadline, !(sent && seen) {
            if !sent, from.tx.pending > 0 { _ = from.tx.reap(); sent = true }
            while to.rx.pending > 0 {
                let u = to.rx.reap()
                if u.id < to.rx.size {
                    if NetFrameLayout.check(to.rxBuffer(u.id), length: Int(u.length), capacity: to.rxBufferBytes,
                                            frameBytes: from.frameBytes, dst: to.mac, src: from.mac) == .foreign {
                        seen = true
                    }
                    to.rx.post(u.id)
                }
            }
            to.rx.publish()
            if !(sent && seen) { usleep(1000) }
        }
        if !sent {
            throw .timeout("the hello frame was not taken by \(from.socket) within 1 s (transmit ring stuck)")
        }
        return seen
    }
}

/// Sleeps `seconds` (nanosleep, restarted on EINTR).
func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var req = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var rem = timespec()
    while nanosleep(&req, &rem) != 0, errno == EINTR { req = rem }
}

/// Sleeps `milliseconds`.
func sleepMilliseconds(_ milliseconds: Int) { sleepSeconds(Double(milliseconds) / 1000) }
