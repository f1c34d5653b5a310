import VireoSys

/// What one `vireo-bench blk` run measured (the JSON of the benchmark contract).
public struct BlkResult: Sendable {
    public var label: String
    public var job: BlkJob
    public var seconds: Double
    public var ios: UInt64
    public var bytes: UInt64
    public var errors: UInt64
    /// Latency percentiles in microseconds: min, mean, p50, p90, p99, p999, max.
    public var latencyMicroseconds: [(String, Double)]
    /// CPU seconds of each --pid process over the measured window, by name.
    public var cpuSeconds: [(String, Double)]
    /// The initiator's stats-file deltas over the window (when --stats initiator=PATH).
    public var payloadBytesCopied: UInt64?
    public var allocations: UInt64?
    /// The raw allocation delta over the window (stats-file writes included).
    public var allocationsRaw: UInt64?
    /// Allocations one stats-file write costs the initiator (subtracted from `allocations`).
    public var allocationsPerStatsWrite: UInt64?
    /// Data-path cost deltas over the window by process role (`vireo_datapath_*` of each stats file).
    public var costs: [(String, [String: Double])] = []
    /// The target's payload bytes copied over the window (when --stats target=PATH).
    public var targetPayloadBytesCopied: UInt64?
    /// Read-back checks that passed (--verify).
    public var verifiedBlocks: UInt64 = 0
    /// Times the backend went away and the run connected again (`--reconnect`).
    public var reconnects = 0
    /// Requests in flight at those disconnects, issued again on the new connection.
    public var reissued: UInt64 = 0
    /// Writes that completed OK, over the whole run.
    public var acknowledgedWrites: UInt64 = 0
    /// Of those, WRITE_ZEROES and DISCARD requests (`--zeroes-percent`, `--discard-percent`).
    public var acknowledgedZeroes: UInt64 = 0
    public var acknowledgedDiscards: UInt64 = 0
    /// Queues whose FLUSH after the read-back completed OK (--verify).
    public var flushedQueues = 0
    /// Human-readable problems (I/O errors, mismatches, protocol errors, stuck requests): the run fails.
    public var problems: [String] = []
    /// What could not be measured beside the I/O (a daemon's stats file that did not refresh):
    /// printed, and the figures that need it are left out, but the run's own figures stand.
    public var warnings: [String] = []

    public var iops: Double { seconds > 0 ? Double(ios) / seconds : 0 }
    /// 10^6 bytes per second.
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }

    /// The contract's JSON object.
    public var json: JSONObject {
        var o = JSONObject()
        o.set("tool", "vireo-bench blk")
        o.set("label", label)
        o.set("rw", job.pattern.rawValue)
        if job.pattern == .randrw { o.set("read_percent", job.readPercent) }
        if job.zeroesPercent > 0 || job.discardPercent > 0 {
            o.set("zeroes_percent", job.zeroesPercent)
            o.set("discard_percent", job.discardPercent)
            o.set("acknowledged_zeroes", acknowledgedZeroes)
            o.set("acknowledged_discards", acknowledgedDiscards)
        }
        o.set("bs", job.blockSize)
        o.set("qd", job.queueDepth)
        o.set("queues", job.queues)
        o.set("seconds", seconds)
        o.set("ios", ios)
        o.set("bytes", bytes)
        o.set("errors", errors)
        o.set("iops", iops)
        o.set("mbps", megabytesPerSecond)
        var lat = JSONObject()
        for (k, v) in latencyMicroseconds { lat.set(k, v) }
        o.set("lat_us", lat)
        if job.verify {
            o.set("verify", true)
            o.set("verified_blocks", verifiedBlocks)
            o.set("flushed_queues", flushedQueues)
        }
        if job.reconnectSeconds > 0 {
            o.set("reconnects", reconnects)
            o.set("reissued", reissued)
            o.set("acknowledged_writes", acknowledgedWrites)
        }
        if !cpuSeconds.isEmpty {
            var cpu = JSONObject(), per = JSONObject()
            for (k, v) in cpuSeconds {
                cpu.set(k, v)
                per.set(k, ios > 0 ? v * 1e6 / Double(ios) : .nan)
            }
            o.set("cpu_s", cpu)
            o.set("cpu_us_per_io", per)
        }
        if !costs.isEmpty {
            var all = JSONObject()
            for (role, deltas) in costs {
                var per = JSONObject()
                for (k, v) in deltas.sorted(by: { $0.key < $1.key }) { per.set(k, ios > 0 ? v / Double(ios) : .nan) }
                all.set(role, per)
            }
            o.set("costs_per_io", all)
        }
        if let targetPayloadBytesCopied {
            var t = JSONObject()
            t.set("payload_bytes_copied", targetPayloadBytesCopied)
            o.set("target", t)
        }
        if let payloadBytesCopied {
            var i = JSONObject()
            i.set("payload_bytes_copied", payloadBytesCopied)
            if let allocations {
                i.set("allocations", allocations)
                i.set("allocations_per_io", ios > 0 ? Double(allocations) / Double(ios) : .nan)
                if let allocationsRaw { i.set("allocations_raw", allocationsRaw) }
                if let allocationsPerStatsWrite { i.set("allocations_per_stats_write", allocationsPerStatsWrite) }
            }
            o.set("initiator", i)
        }
        return o
    }

    /// A few lines for people.
    public var summary: String {
        func f(_ v: Double, _ digits: Int = 1) -> String {
            guard v.isFinite else { return "n/a" }
            var s = String((v * pow10(digits)).rounded() / pow10(digits))
            if s.hasSuffix(".0") && digits == 0 { s.removeLast(2) }
            return s
        }
        let lat = Dictionary(uniqueKeysWithValues: latencyMicroseconds)
        var lines = [
            "vireo-bench blk \(label.isEmpty ? "" : label + " ")\(job.pattern.rawValue) bs=\(job.blockSize) qd=\(job.queueDepth) queues=\(job.queues): "
                + "\(ios) I/Os in \(f(seconds, 2)) s, \(f(iops)) IOPS, \(f(megabytesPerSecond, 2)) MB/s, errors \(errors)",
            "  latency us: min \(f(lat["min"] ?? .nan)) mean \(f(lat["mean"] ?? .nan)) p50 \(f(lat["p50"] ?? .nan)) "
                + "p90 \(f(lat["p90"] ?? .nan)) p99 \(f(lat["p99"] ?? .nan)) p99.9 \(f(lat["p999"] ?? .nan)) max \(f(lat["max"] ?? .nan))",
        ]
        for (k, v) in cpuSeconds {
            lines.append("  cpu \(k): \(f(v, 3)) s, \(ios > 0 ? f(v * 1e6 / Double(ios)) : "n/a") us/IO")
        }
        if let payloadBytesCopied {
            var l = "  initiator: payload bytes copied \(payloadBytesCopied)"
            if let allocations {
                l += ", allocations \(allocations) (\(ios > 0 ? f(Double(allocations) / Double(ios), 4) : "n/a")/IO; "
                    + "raw \(allocationsRaw ?? 0), \(allocationsPerStatsWrite ?? 0) per stats write subtracted)"
            }
            lines.append(l)
        }
        if job.verify { lines.append("  verify: \(verifiedBlocks) block reads checked") }
        if job.reconnectSeconds > 0 {
            lines.append("  reconnects: \(reconnects), requests re-issued \(reissued), writes acknowledged \(acknowledgedWrites)")
        }
        for p in problems { lines.append("  problem: \(p)") }
        for w in warnings { lines.append("  warning: \(w)") }
        return lines.joined(separator: "\n")
    }
}

private func pow10(_ d: Int) -> Double {
    var x = 1.0
    for _ in 0..<d { x *= 10 }
    return x
}

extension BlkResult {
    /// The `vireo_datapath_*` deltas between two stats snapshots, by event name, plus
    /// `syscalls` (every event that enters the kernel on soft-RoCE) and `wakeups` (sleeps).
    public static func costs(_ a: [String: Double], _ b: [String: Double]) -> [String: Double] {
        var out: [String: Double] = [:]
        var syscalls = 0.0
        for e in DataPathCosts.Event.allCases {
            let key = "vireo_datapath_\(e.name)_total"
            guard let x = a[key], let y = b[key] else { continue }
            let d = max(0, y - x)
            out[e.name] = d
            if e.isSystemCall { syscalls += d }
        }
        guard !out.isEmpty else { return out }
        out["syscalls"] = syscalls
        out["wakeups"] = out["sleeps"] ?? 0
        return out
    }
}
