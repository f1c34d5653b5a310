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
