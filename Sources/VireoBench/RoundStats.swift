/// One figure aggregated over benchmark rounds: the median and the spread
/// (min–max). Rounds where the figure is missing are skipped; a figure
/// missing from every round has no `RoundStats` at all (the report shows
/// "n/a").
public struct RoundStats: Sendable, Equatable {
    /// The values of the rounds that had the figure, in round order.
    public let values: [Double]
    /// How many rounds the results directory has.
    public let rounds: Int
    public let median: Double
    public let minimum: Double
    public let maximum: Double

    /// nil when no round had the figure; non-finite values are dropped.
    public init?(values: [Double], rounds: Int) {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else { return nil }
        self.values = finite
        self.rounds = Swift.max(rounds, finite.count)
        let sorted = finite.sorted()
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        minimum = sorted[0]
        maximum = sorted[sorted.count - 1]
    }

    /// How many rounds contributed.
    public var count: Int { values.count }

    /// (max − min) / median, or nil when the median is 0.
    public var relativeSpread: Double? {
        guard median != 0 else { return nil }
        return (maximum - minimum) / abs(median)
    }
}
