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
        var sawNonFinite = false
        for line in lines[(headerIndex + 1)...] {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let bytes = Int(fields[0]), bytes >= 0, let iterations = Int(fields[1]),
                  iterations >= 0 else {
                if numericRows.isEmpty { continue }  // a stray line before the first row
                break
            }
            var values: [Double] = [Double(bytes), Double(iterations)]
            var finite = true
            for field in fields.dropFirst(2) {
                let lowered = field.lowercased()
                if lowered.contains("inf") || lowered.contains("nan") {
                    finite = false
                    break
                }
                guard let value = Double(field), value.isFinite else { break }
                values.append(value)
            }
            // perftest prints inf/-nan (and exits 0) when its clock
            // calibration failed: no measurement, not a row.
            guard finite else {
                sawNonFinite = true
                continue
            }
            numericRows.append(values)
        }
        if numericRows.isEmpty && sawNonFinite {
            throw text.contains("Correlation coefficient") ? .clockCalibrationFailed : .nonFiniteValues
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

extension Substring {
    fileprivate func trimmingLeadingSpace() -> Substring { drop(while: { $0 == " " || $0 == "\t" }) }
}
