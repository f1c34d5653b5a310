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
