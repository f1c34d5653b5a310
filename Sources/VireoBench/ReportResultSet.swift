import Foundation

/// A benchmark results directory (see the benchmark contract): `meta.txt`
/// and `round-N/` directories, aggregated per figure over rounds.
public struct ReportResultSet: Sendable {
    /// `meta.txt` as ordered key/value pairs.
    public var meta: [(key: String, value: String)]
    /// Rounds in numeric order.
    public var rounds: [ReportRound]

    public init(meta: [(key: String, value: String)], rounds: [ReportRound]) {
        self.meta = meta
        self.rounds = rounds.sorted { $0.number < $1.number }
    }

    /// Loads `directory`. Throws only when nothing at all is usable.
    public static func load(from directory: URL) throws(ReportError) -> ReportResultSet {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw .unreadableDirectory(path: directory.path, reason: error.localizedDescription)
        }
        var meta: [(key: String, value: String)] = []
        if let data = try? Data(contentsOf: directory.appendingPathComponent("meta.txt")),
           data.count <= ReportRound.maximumFileBytes {
            meta = parseMeta(String(decoding: data, as: UTF8.self))
        }
        var rounds: [ReportRound] = []
        for entry in entries where entry.hasPrefix("round-") {
            guard let number = Int(entry.dropFirst("round-".count)), number >= 0 else { continue }
            var isDirectory: ObjCBool = false
            let url = directory.appendingPathComponent(entry)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory),
                  isDirectory.boolValue else { continue }
            rounds.append(ReportRound.load(from: url, number: number))
        }
        guard rounds.contains(where: { !$0.isEmpty }) else { throw .noResults(path: directory.path) }
        return ReportResultSet(meta: meta, rounds: rounds)
    }

    /// `key=value` lines; blank lines and `#` comments skipped, later keys
    /// replace earlier ones in place.
    public static func parseMeta(_ text: String) -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { continue }
            if let i = result.firstIndex(where: { $0.key == key }) {
                result[i].value = value
            } else {
                result.append((key, value))
            }
        }
        return result
    }

    /// The value of a `meta.txt` key.
    public func meta(_ key: String) -> String? { meta.first(where: { $0.key == key })?.value }

    /// Every skipped file with its reason.
    public var problems: [String] { rounds.flatMap(\.problems) }

    // MARK: Aggregation

    /// The median and spread of `figure` over the rounds that have it.
    public func stats(_ figure: (ReportRound) -> Double?) -> RoundStats? {
        RoundStats(values: rounds.compactMap(figure), rounds: rounds.count)
    }

    /// A perftest latency row of `tool-bytes` in one round (the row for
    /// that size, else the first row).
    public static func latencyRow(_ round: ReportRound, tool: String, bytes: Int) -> PerftestLatencyRow? {
        guard let rows = round.perftest["\(tool)-\(bytes)"]?.latencyRows else { return nil }
        return rows.first(where: { $0.bytes == bytes }) ?? rows.first
    }

    /// A perftest bandwidth row of `tool-bytes` in one round.
    public static func bandwidthRow(_ round: ReportRound, tool: String, bytes: Int) -> PerftestBandwidthRow? {
        guard let rows = round.perftest["\(tool)-\(bytes)"]?.bandwidthRows else { return nil }
        return rows.first(where: { $0.bytes == bytes }) ?? rows.first
    }

    /// A perftest latency figure over rounds, e.g. `\.typical`.
    public func perftestLatency(_ tool: String, bytes: Int, _ figure: (PerftestLatencyRow) -> Double?) -> RoundStats? {
        stats { Self.latencyRow($0, tool: tool, bytes: bytes).flatMap(figure) }
    }

    /// A perftest bandwidth figure over rounds, e.g. `\.megabytesPerSecond`.
    public func perftestBandwidth(_ tool: String, bytes: Int,
                                  _ figure: (PerftestBandwidthRow) -> Double?) -> RoundStats? {
        stats { Self.bandwidthRow($0, tool: tool, bytes: bytes).flatMap(figure) }
    }

    /// A block job figure of one system over rounds.
    public func block(_ system: ReportSystem, _ job: String, _ figure: (ReportJobSample) -> Double?) -> RoundStats? {
        stats { $0.block[system]?[job].flatMap(figure) }
    }

    /// A vireo-net figure at one frame size over rounds.
    public func net(_ frameBytes: Int, _ figure: (ReportNetRecord) -> Double?) -> RoundStats? {
        stats { $0.net[frameBytes].flatMap(figure) }
    }

    /// Whether `meta.txt` says this was the short (CI) run.
    public var isShortMode: Bool { meta("mode") == "short" }

    /// The block jobs to tabulate for `system`: the contract's (the main
    /// four, plus the queue-depth sweep unless short) so a job that failed
    /// in every round still shows as n/a, then any others present. Empty
    /// when the system was not measured at all.
    public func jobs(_ system: ReportSystem) -> [String] {
        let present = Set(rounds.flatMap { $0.block[system].map { Array($0.keys) } ?? [] })
        guard !present.isEmpty else { return [] }
        let expected = Set(isShortMode ? Self.mainJobs : Self.mainJobs + Self.sweepJobs)
        let known = Self.contractJobs.filter { present.contains($0) || expected.contains($0) }
        return known + present.subtracting(known).sorted()
    }

    /// vireo-net frame sizes to tabulate: the contract's three and any
    /// others present; empty when vireo-net was not measured at all.
    public var netFrameSizes: [Int] {
        let present = Set(rounds.flatMap { Array($0.net.keys) })
        guard !present.isEmpty else { return [] }
        return present.union(Self.netSizes).sorted()
    }

    /// The perftest runs to tabulate: the contract's (unless short) and
    /// any others present; empty when perftest was not measured at all.
    public var perftestFiles: [String] {
        let present = Set(rounds.flatMap { Array($0.perftest.keys) })
        guard !present.isEmpty else { return [] }
        let known = Self.contractPerftest.filter { present.contains($0) || !isShortMode }
        return known + present.subtracting(known).sorted()
    }

    /// The four jobs the goals use.
    public static let mainJobs = ["randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd32", "seqread-128k-qd8"]
    /// The queue-depth sweep's extra jobs.
    public static let sweepJobs = ["randread-4k-qd2", "randread-4k-qd4", "randread-4k-qd8", "randread-4k-qd16"]
    /// The contract's vireo-net frame sizes.
    public static let netSizes = [64, 1500, 9000]

    /// The contract's block jobs, in report order.
    public static let contractJobs = [
        "randread-4k-qd1", "randread-4k-qd2", "randread-4k-qd4", "randread-4k-qd8", "randread-4k-qd16",
        "randread-4k-qd32", "randwrite-4k-qd32", "seqread-128k-qd8", "seqwrite-128k-qd8",
    ]

    /// The queue-depth sweep (4K randread).
    public static let queueDepths = [1, 2, 4, 8, 16, 32]

    /// The contract's perftest runs, in report order.
    public static let contractPerftest: [String] = {
        var names: [String] = []
        for tool in ["ib_send_lat", "ib_write_lat", "ib_read_lat"] { for s in [2, 4096] { names.append("\(tool)-\(s)") } }
        for tool in ["ib_write_bw", "ib_read_bw", "ib_send_bw"] {
            for s in [64, 4096, 131072] { names.append("\(tool)-\(s)") }
        }
        return names
    }()
}
