/// One block job's figures from one round, normalised from either a
/// `vireo-bench blk` JSON or a fio JSON so systems compare directly.
public struct ReportJobSample: Sendable, Equatable {
    public var iops: Double?
    /// 10^6 bytes per second.
    public var megabytesPerSecond: Double?
    /// Latency percentiles in µs keyed by percentile (50, 90, 99, 99.9).
    public var latencyUs: [Double: Double]
    /// How the latency was measured ("vireo-bench", "fio clat", "fio lat").
    public var latencySource: String?
    /// CPU µs per I/O by process role (vireo only).
    public var cpuUsPerIO: [String: Double]
    /// I/O errors reported by the load generator.
    public var errors: Double?
    /// System calls and thread wake-ups per I/O by process role (vireo only, from the stats files).
    public var syscallsPerIO: [String: Double] = [:]
    public var wakeupsPerIO: [String: Double] = [:]
    /// Whole-VM CPU µs per I/O (every process and the kernel, from /proc/stat inside the job's
    /// window: lab-bench's `<job>.vm` beside the result), any system.
    public var vmCPUUsPerIO: Double?

    /// Sets `vmCPUUsPerIO` from a `<job>.vm` file ("busy_seconds wall_seconds").
    mutating func readVMCPU(_ text: String) {
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
        guard f.count >= 2, f[1] > 0, let iops, iops > 0 else { return }
        vmCPUUsPerIO = f[0] / f[1] * 1e6 / iops
    }

    public init(iops: Double?, megabytesPerSecond: Double?, latencyUs: [Double: Double],
                latencySource: String?, cpuUsPerIO: [String: Double] = [:], errors: Double? = nil) {
        self.iops = iops
        self.megabytesPerSecond = megabytesPerSecond
        self.latencyUs = latencyUs
        self.latencySource = latencySource
        self.cpuUsPerIO = cpuUsPerIO
        self.errors = errors
    }

    /// From `vireo-bench blk --json`.
    public init(_ record: ReportBlkRecord) {
        var latency: [Double: Double] = [:]
        for p in FioResult.reportedPercentiles {
            if let v = record.latUs?.value(atPercentile: p), v.isFinite { latency[p] = v }
        }
        self.init(iops: record.iops, megabytesPerSecond: record.megabytesPerSecond, latencyUs: latency,
                  latencySource: "vireo-bench", cpuUsPerIO: record.cpuUsPerIO ?? [:], errors: record.errors)
        for (role, costs) in record.costsPerIO ?? [:] {
            if let v = costs["syscalls"] { syscallsPerIO[role] = v }
            if let v = costs["wakeups"] { wakeupsPerIO[role] = v }
        }
    }

    /// From fio's JSON (the direction that did I/O).
    public init?(_ fio: FioResult) {
        guard let summary = fio.primary else { return nil }
        self.init(iops: summary.iops, megabytesPerSecond: summary.megabytesPerSecond,
                  latencyUs: summary.latencyUs, latencySource: summary.latencyKind.map { "fio \($0.rawValue)" })
    }
}
