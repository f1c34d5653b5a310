/// Why a perftest output could not be used.
public enum PerftestParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No `#bytes ...` header line: the run failed before measuring.
    case noHeader
    /// perftest's CPU clock calibration failed (common under TCG): no
    /// table, or one of inf/nan (perftest still exits 0 then).
    case clockCalibrationFailed
    /// A header that is neither a latency nor a bandwidth table.
    case unknownHeader(String)
    /// The header is there but no row of numbers follows it.
    case noDataRow
    /// Rows are there but too short to hold the mandatory columns.
    case truncatedRow
    /// The row holds inf/nan instead of numbers.
    case nonFiniteValues

    public var description: String {
        switch self {
        case .noHeader: "no perftest result table (the run failed?)"
        case .clockCalibrationFailed: "perftest CPU clock calibration failed (Correlation coefficient)"
        case .unknownHeader(let header): "unknown perftest table header: \(header.prefix(120))"
        case .noDataRow: "perftest table without a result row"
        case .truncatedRow: "perftest result row cut short"
        case .nonFiniteValues: "perftest printed inf/nan instead of a measurement"
        }
    }
}
