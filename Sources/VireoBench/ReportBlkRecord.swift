import Foundation

/// The JSON `vireo-bench blk --json` writes (see the benchmark contract),
/// decoded for the report. Every key is optional so an older or partial
/// file still yields what it has; unknown keys are ignored.
public struct ReportBlkRecord: Sendable, Equatable, Decodable {
    public var tool: String?
    public var label: String?
    public var rw: String?
    public var bs: Int?
    public var qd: Int?
    public var queues: Int?
    public var seconds: Double?
    public var ios: Double?
    public var bytes: Double?
    public var errors: Double?
    public var iops: Double?
    /// 10^6 bytes per second.
    public var mbps: Double?
    public var latUs: Latency?
    /// CPU seconds per process role (`initiator`, `target`).
    public var cpuS: [String: Double]?
    /// CPU µs per I/O per process role.
    public var cpuUsPerIO: [String: Double]?
    /// Present when the initiator's stats file was read.
    public var initiator: Initiator?
    /// Present when the target's stats file was read (its `payload_bytes_copied`).
    public var target: Initiator?
    /// Data-path costs per I/O by process role (`initiator`, `target`), from their stats
    /// files: each `DataPathCosts` event, plus `syscalls` and `wakeups`.
    public var costsPerIO: [String: [String: Double]]?

    enum CodingKeys: String, CodingKey {
        case tool, label, rw, bs, qd, queues, seconds, ios, bytes, errors, iops, mbps, initiator, target
        case costsPerIO = "costs_per_io"
        case latUs = "lat_us"
        case cpuS = "cpu_s"
        case cpuUsPerIO = "cpu_us_per_io"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tool = try c.decodeIfPresent(String.self, forKey: .tool)
        label = try c.decodeIfPresent(String.self, forKey: .label)
        rw = try c.decodeIfPresent(String.self, forKey: .rw)
        bs = try c.decodeIfPresent(Int.self, forKey: .bs)
        qd = try c.decodeIfPresent(Int.self, forKey: .qd)
        queues = try c.decodeIfPresent(Int.self, forKey: .queues)
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds)
        ios = try c.decodeIfPresent(Double.self, forKey: .ios)
        bytes = try c.decodeIfPresent(Double.self, forKey: .bytes)
        errors = try c.decodeIfPresent(Double.self, forKey: .errors)
        iops = try c.decodeIfPresent(Double.self, forKey: .iops)
        mbps = try c.decodeIfPresent(Double.self, forKey: .mbps)
        latUs = try c.decodeIfPresent(Latency.self, forKey: .latUs)
        // The load generator writes a non-finite figure (0 I/Os) as null.
        cpuS = try c.decodeIfPresent([String: Double?].self, forKey: .cpuS)?.compactMapValues { $0 }
        cpuUsPerIO = try c.decodeIfPresent([String: Double?].self, forKey: .cpuUsPerIO)?.compactMapValues { $0 }
        initiator = try c.decodeIfPresent(Initiator.self, forKey: .initiator)
        target = try c.decodeIfPresent(Initiator.self, forKey: .target)
        costsPerIO = try c.decodeIfPresent([String: [String: Double?]].self, forKey: .costsPerIO)?
            .mapValues { $0.compactMapValues { $0 } }
    }

    /// `lat_us`: latency percentiles in µs.
    public struct Latency: Sendable, Equatable, Decodable {
        public var min: Double?
        public var mean: Double?
        public var p50: Double?
        public var p90: Double?
        public var p99: Double?
        public var p999: Double?
        public var max: Double?

        /// The value at 50, 90, 99 or 99.9; nil for others.
        public func value(atPercentile p: Double) -> Double? {
            switch p {
            case 50: p50
            case 90: p90
            case 99: p99
            case 99.9: p999
            default: nil
            }
        }
    }

    /// `initiator` (and `target`, which has only the copies): a daemon's counters over the run.
    public struct Initiator: Sendable, Equatable, Decodable {
        public var payloadBytesCopied: Double?
        public var allocations: Double?
        public var allocationsPerIO: Double?

        enum CodingKeys: String, CodingKey {
            case payloadBytesCopied = "payload_bytes_copied"
            case allocations
            case allocationsPerIO = "allocations_per_io"
        }
    }

    /// Decodes one file.
    public static func parse(_ data: Data) throws(ReportJSONError) -> ReportBlkRecord {
        try ReportJSONError.decode(ReportBlkRecord.self, from: data)
    }

    /// MB/s (10^6), from `mbps` or else `bytes / seconds`.
    public var megabytesPerSecond: Double? {
        if let mbps { return mbps }
        guard let bytes, let seconds, seconds > 0 else { return nil }
        return bytes / seconds / 1e6
    }
}
