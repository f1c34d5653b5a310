import Foundation

/// fio's `--output-format=json` report, the parts the benchmark report uses.
///
/// Every key is optional: fio versions differ, and a key missing from one
/// job must not make the whole file unusable. Text fio prints around the
/// JSON object (warnings start with `fio:`) is skipped.
public struct FioResult: Sendable, Equatable, Decodable {
    public var fioVersion: String?
    public var jobs: [Job]

    enum CodingKeys: String, CodingKey {
        case fioVersion = "fio version"
        case jobs
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        fioVersion = try container.decodeIfPresent(String.self, forKey: .fioVersion)
        jobs = try container.decodeIfPresent([Job].self, forKey: .jobs) ?? []
    }

    /// Parses fio's JSON output, tolerating text before and after the
    /// object.
    public static func parse(_ data: Data) throws(FioParseError) -> FioResult {
        guard let open = data.firstIndex(of: UInt8(ascii: "{")),
              let close = data.lastIndex(of: UInt8(ascii: "}")), open < close else { throw .notJSON }
        let result: FioResult
        do {
            result = try JSONDecoder().decode(FioResult.self, from: data[open...close])
        } catch {
            throw .malformed(ReportJSONError.brief(error))
        }
        guard !result.jobs.isEmpty else { throw .noJobs }
        if let failed = result.jobs.first(where: { ($0.error ?? 0) != 0 }) {
            throw .jobFailed(name: failed.jobname ?? "?", error: failed.error ?? 0)
        }
        return result
    }

    /// One fio job (`jobs[i]`).
    public struct Job: Sendable, Equatable, Decodable {
        public var jobname: String?
        public var error: Int?
        public var read: Direction?
        public var write: Direction?
        /// User and system CPU of the fio process, percent of one CPU.
        public var usrCPU: Double?
        public var sysCPU: Double?

        enum CodingKeys: String, CodingKey {
            case jobname, error, read, write
            case usrCPU = "usr_cpu"
            case sysCPU = "sys_cpu"
        }
    }

    /// `jobs[i].read` / `.write`.
    public struct Direction: Sendable, Equatable, Decodable {
        public var ioBytes: Double?
        public var bwBytes: Double?
        public var iops: Double?
        public var totalIOs: Double?
        public var runtimeMs: Double?
        /// Completion latency (fio's default percentiles), ns.
        public var clatNs: Latency?
        /// Total latency (submission + completion), ns; percentiles only
        /// with `lat_percentiles=1`.
        public var latNs: Latency?
        /// fio 2.x reported `clat` in µs.
        public var clatUsLegacy: Latency?

        enum CodingKeys: String, CodingKey {
            case ioBytes = "io_bytes"
            case bwBytes = "bw_bytes"
            case iops
            case totalIOs = "total_ios"
            case runtimeMs = "runtime"
            case clatNs = "clat_ns"
            case latNs = "lat_ns"
            case clatUsLegacy = "clat"
        }

        /// Whether this direction did any I/O.
        public var isActive: Bool { (totalIOs ?? 0) > 0 || (ioBytes ?? 0) > 0 || (iops ?? 0) > 0 }
    }

    /// A latency block (`clat_ns`, `lat_ns`).
    public struct Latency: Sendable, Equatable, Decodable {
        public var min: Double?
        public var max: Double?
        public var mean: Double?
        /// fio's percentile map, keyed like `"99.000000"`.
        public var percentile: [String: Double]?

        /// The value at percentile `p` (e.g. 99.9), matched numerically so
        /// `"99.900000"` and `"99.9"` both work.
        public func value(atPercentile p: Double) -> Double? {
            guard let percentile else { return nil }
            for (key, value) in percentile {
                if let k = Double(key), abs(k - p) < 1e-6 { return value }
            }
            return nil
        }
    }

    /// Which fio latency a summary's percentiles came from.
    public enum LatencyKind: String, Sendable, Equatable {
        /// `lat_ns`: submission to completion.
        case total = "lat"
        /// `clat_ns`: fio's default, completion latency (excludes submission).
        case completion = "clat"
    }

    /// The numbers the report uses for one direction, summed over jobs
    /// (IOPS, bandwidth) with latency percentiles from the first job that
    /// did I/O in that direction.
    public struct Summary: Sendable, Equatable {
        public var iops: Double
        public var bytesPerSecond: Double
        public var ios: Double
        /// Latency percentiles in µs keyed by percentile (50, 90, 99, 99.9).
        public var latencyUs: [Double: Double]
        public var latencyKind: LatencyKind?
        /// usr + sys CPU of fio, percent of one CPU, summed over jobs.
        public var cpuPercent: Double?

        public var megabytesPerSecond: Double { bytesPerSecond / 1e6 }
        public func latency(_ percentile: Double) -> Double? { latencyUs[percentile] }
    }

    /// The percentiles the report plots and tabulates.
    public static let reportedPercentiles: [Double] = [50, 90, 99, 99.9]

    /// Read totals, or nil when no job read.
    public var read: Summary? { summary(\.read) }
    /// Write totals, or nil when no job wrote.
    public var write: Summary? { summary(\.write) }
    /// The direction that did I/O: read when any job read, else write.
    public var primary: Summary? { read ?? write }

    private func summary(_ direction: KeyPath<Job, Direction?>) -> Summary? {
        let active = jobs.compactMap { $0[keyPath: direction] }.filter(\.isActive)
        guard let first = active.first else { return nil }
        var latency: [Double: Double] = [:]
        var kind: LatencyKind?
        // Prefer total latency when fio was asked for its percentiles (it
        // matches what the vhost-user load generator measures), else clat.
        // (block, divisor to µs, kind)
        let sources: [(Latency?, Double, LatencyKind)] = [
            (first.latNs, 1000, .total), (first.clatNs, 1000, .completion), (first.clatUsLegacy, 1, .completion),
        ]
        for (block, divisor, sourceKind) in sources {
            guard let block, block.percentile?.isEmpty == false else { continue }
            for p in Self.reportedPercentiles {
                if let v = block.value(atPercentile: p), v.isFinite, v >= 0 { latency[p] = v / divisor }
            }
            if !latency.isEmpty { kind = sourceKind; break }
        }
        let cpu = jobs.reduce(into: Double?.none) { sum, job in
            guard job[keyPath: direction]?.isActive == true, let u = job.usrCPU, let s = job.sysCPU else { return }
            sum = (sum ?? 0) + u + s
        }
        return Summary(
            iops: active.reduce(0) { $0 + ($1.iops ?? 0) },
            bytesPerSecond: active.reduce(0) { $0 + ($1.bwBytes ?? 0) },
            ios: active.reduce(0) { $0 + ($1.totalIOs ?? 0) },
            latencyUs: latency, latencyKind: kind, cpuPercent: cpu)
    }
}
