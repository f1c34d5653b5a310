/// One `vireo-bench net` measurement over the window after the ramp. Rates
/// count received frames (valid data frames checked by the receiver); `loss`
/// compares them with the frames the sending NIC's device completed in the
/// same window (approximate: frames in flight at either edge shift it a little).
public struct NetLoadResult: Sendable, Equatable {
    public var label: String
    public var frameBytes: Int
    public var seconds: Double
    public var txFrames: UInt64
    public var rxFrames: UInt64
    public var rxBytes: UInt64
    public var corrupt: UInt64
    public var outOfOrder: UInt64
    public var foreign: UInt64
    /// Sequence numbers skipped between received frames (frames lost on the way).
    public var gaps: UInt64
    public var helloDelivered: Bool
    public var kicks: UInt64
    public var txSleeps: UInt64
    public var rxSleeps: UInt64
    /// Frames that arrived on the sending NIC during the whole run (hello, floods).
    public var senderReceived: UInt64
    /// CPU seconds per named process over the window (only those readable at both ends).
    public var cpuSeconds: [(name: String, seconds: Double)]
    /// TX used entries naming no chain the device held (whole run; a broken device).
    public var deviceErrors: UInt64
    /// CPU seconds of the load generator itself over the window (both threads).
    public var benchCPUSeconds: Double
    /// Frames the target's switch dropped (any reason) and frame bytes it copied, over the
    /// window (with `--stats target=PATH`).
    public var switchDrops: UInt64?
    public var switchBytesCopied: UInt64?

    public static func == (a: NetLoadResult, b: NetLoadResult) -> Bool {
        a.label == b.label && a.frameBytes == b.frameBytes && a.seconds == b.seconds && a.txFrames == b.txFrames
            && a.rxFrames == b.rxFrames && a.rxBytes == b.rxBytes && a.errors == b.errors
            && a.cpuSeconds.map(\.name) == b.cpuSeconds.map(\.name) && a.cpuSeconds.map(\.seconds) == b.cpuSeconds.map(\.seconds)
    }

    init(config: NetLoadConfig, start: NetLoad.Snapshot, end: NetLoad.Snapshot, helloDelivered: Bool,
         kicks: UInt64, sleeps: (UInt64, UInt64), senderReceived: UInt64, deviceErrors: UInt64) {
        self.deviceErrors = deviceErrors
        label = config.label
        frameBytes = config.frameBytes
        seconds = Double(end.time &- start.time) / 1e9
        txFrames = end.sent &- start.sent
        rxFrames = end.frames &- start.frames
        rxBytes = end.bytes &- start.bytes
        corrupt = end.corrupt &- start.corrupt
        outOfOrder = end.outOfOrder &- start.outOfOrder
        foreign = end.foreign &- start.foreign
        gaps = end.gaps &- start.gaps
        self.helloDelivered = helloDelivered
        self.kicks = kicks
        txSleeps = sleeps.0
        rxSleeps = sleeps.1
        self.senderReceived = senderReceived
        benchCPUSeconds = max(0, end.selfCPU - start.selfCPU)
        cpuSeconds = config.pids.compactMap { p in
            guard let a = start.cpu[p.name], let b = end.cpu[p.name] else { return nil }
            return (p.name, max(0, b - a))
        }
    }

    /// Frames that failed validation or arrived out of order.
    public var errors: UInt64 { corrupt + outOfOrder }
    /// Received frames per second.
    public var fps: Double { seconds > 0 ? Double(rxFrames) / seconds : 0 }
    /// Received frame bits per second / 10^9.
    public var gbps: Double { seconds > 0 ? Double(rxBytes) * 8 / 1e9 / seconds : 0 }
    /// Received frame bytes per second / 10^6.
    public var mbps: Double { seconds > 0 ? Double(rxBytes) / 1e6 / seconds : 0 }
    /// 1 - received / sent over the window, clamped to 0...1.
    public var loss: Double { txFrames == 0 ? (rxFrames == 0 ? 0 : 0) : min(1, max(0, 1 - Double(rxFrames) / Double(txFrames))) }

    /// CPU microseconds per received frame for each named process.
    public var cpuMicrosecondsPerFrame: [(name: String, microseconds: Double)] {
        cpuSeconds.map { ($0.name, rxFrames == 0 ? 0 : $0.seconds * 1e6 / Double(rxFrames)) }
    }

    /// The JSON object of the benchmark contract (one line).
    public var json: String {
        var o = JSONObject()
        o.set("tool", "vireo-bench net"); o.set("label", label); o.set("frame_bytes", frameBytes)
        o.set("seconds", seconds); o.set("tx_frames", txFrames); o.set("rx_frames", rxFrames); o.set("rx_bytes", rxBytes)
        o.set("fps", fps); o.set("gbps", gbps); o.set("mbps", mbps); o.set("loss", loss)
        o.set("errors", errors); o.set("corrupt", corrupt); o.set("out_of_order", outOfOrder); o.set("gaps", gaps)
        o.set("foreign", foreign); o.set("hello_delivered", helloDelivered); o.set("bench_cpu_s", benchCPUSeconds)
        o.set("device_errors", deviceErrors)
        if let switchDrops, let switchBytesCopied {
            var t = JSONObject()
            t.set("drops", switchDrops)
            t.set("payload_bytes_copied", switchBytesCopied)
            o.set("target", t)
        }
        if !cpuSeconds.isEmpty {
            var cpu = JSONObject(), perFrame = JSONObject()
            for c in cpuSeconds { cpu.set(c.name, c.seconds) }
            for c in cpuMicrosecondsPerFrame { perFrame.set(c.name, c.microseconds) }
            o.set("cpu_s", cpu); o.set("cpu_us_per_frame", perFrame)
        }
        return o.text
    }

    /// A few human-readable lines.
    public var summary: String {
        func fmt(_ v: Double, _ digits: Int) -> String {
            var s = "\(Double(Int((v * pow10(digits)).rounded())) / pow10(digits))"
            if s.hasSuffix(".0"), digits == 0 { s.removeLast(2) }
            return s
        }
        func pow10(_ d: Int) -> Double { (0..<d).reduce(1.0) { r, _ in r * 10 } }
        var lines = [
            "vireo-bench net\(label.isEmpty ? "" : " [\(label)]"): \(frameBytes)-byte frames, \(fmt(seconds, 2)) s measured",
            "  rx \(rxFrames) frames: \(fmt(fps, 0)) frames/s, \(fmt(gbps, 3)) Gbit/s, \(fmt(mbps, 2)) MB/s",
            "  tx \(txFrames) frames, loss \(fmt(loss * 100, 2)) %, \(gaps) sequence gaps; errors \(errors) (corrupt \(corrupt), out of order \(outOfOrder)), foreign \(foreign)\(deviceErrors > 0 ? ", bogus TX completions \(deviceErrors)" : "")",
            "  hello \(helloDelivered ? "delivered" : "NOT delivered (frames may have flooded)"), kicks \(kicks), sleeps tx \(txSleeps) rx \(rxSleeps); load generator cpu \(fmt(benchCPUSeconds, 3)) s",
        ]
        for (c, u) in zip(cpuSeconds, cpuMicrosecondsPerFrame) {
            lines.append("  cpu \(c.name): \(fmt(c.seconds, 3)) s, \(fmt(u.microseconds, 2)) us/frame")
        }
        return lines.joined(separator: "\n")
    }
}
