/// One perftest run (`ib_send_lat`, `ib_write_bw`, ...) parsed from the
/// client's stdout.
///
/// perftest prints a dashed banner, then a header line starting with
/// `#bytes`, then one data row per message size. Latency tests
/// (`*_lat`) print `#bytes #iterations t_min t_max t_typical t_avg t_stdev
/// 99% 99.9%` (all in µs; older versions stop after `t_typical`); bandwidth
/// tests (`*_bw`) print `#bytes #iterations BW-peak BW-average MsgRate`.
/// The header decides which kind it is; the parser never trusts the row to
/// be complete or well formed.
public enum PerftestResult: Sendable, Equatable {
    case latency([PerftestLatencyRow])
    case bandwidth([PerftestBandwidthRow])

    /// Parses perftest's stdout. Rows are returned in output order (one per
    /// message size; `-a` prints many).
    public static func parse(_ text: String) throws(PerftestParseError) -> PerftestResult {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" })
        guard let headerIndex = lines.firstIndex(where: { $0.trimmingLeadingSpace().hasPrefix("#bytes") }) else {
            if text.contains("Correlation coefficient") { throw .clockCalibrationFailed }
            throw .noHeader
        }
        let header = String(lines[headerIndex])
        let isLatency = header.contains("t_min") || header.contains("t_typical")
        let isBandwidth = header.contains("BW peak") || header.contains("BW average") || header.contains("MsgRate")
        guard isLatency != isBandwidth else { throw .unknownHeader(header) }
        // Data rows follow the header until the closing dashed line. A row
        // starts with two integers (#bytes #iterations); anything else ends
        // the table (warnings, the closing dashes).
        var numericRows: [[Double]] = []
        for line in lines[(headerIndex + 1)...] {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let bytes = Int(fields[0]), bytes >= 0, let iterations = Int(fields[1]),
                  iterations >= 0 else {
                if numericRows.isEmpty { continue }  // a stray line before the first row
                break
            }
            var values: [Double] = [Double(bytes), Double(iterations)]
            for field in fields.dropFirst(2) {
                guard let value = Double(field), value.isFinite else { break }
                values.append(value)
            }
            numericRows.append(values)
        }
        guard !numericRows.isEmpty else { throw .noDataRow }
        if isLatency {
            let rows = numericRows.compactMap { PerftestLatencyRow(values: $0) }
            guard !rows.isEmpty else { throw .truncatedRow }
            return .latency(rows)
        }
        let bandwidthUnit: PerftestBandwidthRow.Unit = header.contains("Gb/sec") ? .gigabitsPerSecond : .mebibytesPerSecond
        let rows = numericRows.compactMap { PerftestBandwidthRow(values: $0, unit: bandwidthUnit) }
        guard !rows.isEmpty else { throw .truncatedRow }
        return .bandwidth(rows)
    }

    /// The latency rows, or nil for a bandwidth test.
    public var latencyRows: [PerftestLatencyRow]? {
        if case .latency(let rows) = self { return rows }
        return nil
    }

    /// The bandwidth rows, or nil for a latency test.
    public var bandwidthRows: [PerftestBandwidthRow]? {
        if case .bandwidth(let rows) = self { return rows }
        return nil
    }
}

/// Why a perftest output could not be used.
public enum PerftestParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No `#bytes ...` header line: the run failed before measuring.
    case noHeader
    /// perftest's CPU clock calibration failed (common under TCG).
    case clockCalibrationFailed
    /// A header that is neither a latency nor a bandwidth table.
    case unknownHeader(String)
    /// The header is there but no row of numbers follows it.
    case noDataRow
    /// Rows are there but too short to hold the mandatory columns.
    case truncatedRow

    public var description: String {
        switch self {
        case .noHeader: "no perftest result table (the run failed?)"
        case .clockCalibrationFailed: "perftest CPU clock calibration failed (Correlation coefficient)"
        case .unknownHeader(let header): "unknown perftest table header: \(header.prefix(120))"
        case .noDataRow: "perftest table without a result row"
        case .truncatedRow: "perftest result row cut short"
        }
    }
}

/// One row of a perftest latency table. Times in microseconds.
public struct PerftestLatencyRow: Sendable, Equatable {
    public var bytes: Int
    public var iterations: Int
    public var minimum: Double
    public var maximum: Double
    /// perftest's `t_typical`: the median.
    public var typical: Double
    public var average: Double?
    public var standardDeviation: Double?
    public var p99: Double?
    public var p999: Double?

    /// Needs at least `#bytes #iterations t_min t_max t_typical`.
    init?(values: [Double]) {
        guard values.count >= 5 else { return nil }
        bytes = Int(values[0])
        iterations = Int(values[1])
        minimum = values[2]
        maximum = values[3]
        typical = values[4]
        average = values.count > 5 ? values[5] : nil
        standardDeviation = values.count > 6 ? values[6] : nil
        p99 = values.count > 7 ? values[7] : nil
        p999 = values.count > 8 ? values[8] : nil
    }

    public init(bytes: Int, iterations: Int, minimum: Double, maximum: Double, typical: Double,
                average: Double? = nil, standardDeviation: Double? = nil, p99: Double? = nil, p999: Double? = nil) {
        self.bytes = bytes
        self.iterations = iterations
        self.minimum = minimum
        self.maximum = maximum
        self.typical = typical
        self.average = average
        self.standardDeviation = standardDeviation
        self.p99 = p99
        self.p999 = p999
    }
}

/// One row of a perftest bandwidth table.
public struct PerftestBandwidthRow: Sendable, Equatable {
    /// The unit perftest printed the BW columns in.
    public enum Unit: Sendable, Equatable {
        /// `[MB/sec]`: perftest divides by 2^20, so these are MiB/s.
        case mebibytesPerSecond
        /// `[Gb/sec]` (`--report_gbits`): 10^9 bits/s.
        case gigabitsPerSecond
    }

    public var bytes: Int
    public var iterations: Int
    public var peak: Double
    public var average: Double
    public var unit: Unit
    /// Messages per second in millions; nil when the column is missing.
    public var messageRateMpps: Double?

    init?(values: [Double], unit: Unit) {
        guard values.count >= 4 else { return nil }
        bytes = Int(values[0])
        iterations = Int(values[1])
        peak = values[2]
        average = values[3]
        self.unit = unit
        messageRateMpps = values.count > 4 ? values[4] : nil
    }

    public init(bytes: Int, iterations: Int, peak: Double, average: Double, unit: Unit = .mebibytesPerSecond,
                messageRateMpps: Double?) {
        self.bytes = bytes
        self.iterations = iterations
        self.peak = peak
        self.average = average
        self.unit = unit
        self.messageRateMpps = messageRateMpps
    }

    /// Where `bytesPerSecond` and `messagesPerSecond` come from.
    public enum RateSource: String, Sendable, Equatable {
        /// perftest's MsgRate[Mpps] column (× message size for bytes/s).
        case messageRate = "MsgRate"
        /// The BW average column converted to bytes/s (÷ size for msg/s).
        case bandwidthAverage = "BW average"
    }

    /// The column with more significant digits: perftest prints MsgRate
    /// with 6 decimals (coarse for 128 KiB messages) and BW with 2 (coarse
    /// for 64 B). Both measure the same thing.
    public var rateSource: RateSource? {
        let rate = (messageRateMpps ?? 0) > 0 && bytes > 0 ? messageRateMpps : nil
        let bandwidth = average > 0 ? average : nil
        switch (rate, bandwidth) {
        case (nil, nil): return nil
        case (.some, nil): return .messageRate
        case (nil, .some): return .bandwidthAverage
        case (.some(let mpps), .some(let bw)):
            // Relative rounding error of each printed value.
            return 0.000_000_5 / mpps <= 0.005 / bw ? .messageRate : .bandwidthAverage
        }
    }

    /// Bytes per second (10^0), from `rateSource`.
    public var bytesPerSecond: Double? {
        switch rateSource {
        case .messageRate: return messageRateMpps.map { $0 * 1e6 * Double(bytes) }
        case .bandwidthAverage: return averageBytesPerSecondFromBandwidth
        case nil: return nil
        }
    }

    /// Messages per second, from `rateSource`.
    public var messagesPerSecond: Double? {
        switch rateSource {
        case .messageRate: return messageRateMpps.map { $0 * 1e6 }
        case .bandwidthAverage:
            guard bytes > 0, let bytesPerSecond = averageBytesPerSecondFromBandwidth else { return nil }
            return bytesPerSecond / Double(bytes)
        case nil: return nil
        }
    }

    /// MB/s in 10^6 bytes/s (the report's unit everywhere).
    public var megabytesPerSecond: Double? { bytesPerSecond.map { $0 / 1e6 } }

    private var averageBytesPerSecondFromBandwidth: Double? {
        guard average > 0 else { return nil }
        switch unit {
        case .mebibytesPerSecond: return average * 1_048_576
        case .gigabitsPerSecond: return average * 1e9 / 8
        }
    }
}

extension Substring {
    fileprivate func trimmingLeadingSpace() -> Substring { drop(while: { $0 == " " || $0 == "\t" }) }
}
