/// One performance goal of issue #6, evaluated on a results directory:
/// vireo's figure against a peer's (or against zero), the ratio, the
/// target and by how much it passes or misses.
public struct Goal: Sendable, Equatable {
    /// What the goal requires of the ratio (or of the figure itself).
    public enum Requirement: Sendable, Equatable {
        /// ratio = measured / reference must be <= the value.
        case ratioAtMost(Double)
        /// ratio = measured / reference must be >= the value.
        case ratioAtLeast(Double)
        /// The measured figure must be exactly 0 (no ratio).
        case zero
        /// measured − reference must be <= the value (in the goal's unit), e.g. added latency.
        case excessAtMost(Double)
        /// The measured figure itself must be <= the value (no reference), e.g. a budget per I/O.
        case atMost(Double)
    }

    /// pass, miss, or not measurable from these results.
    public enum Status: String, Sendable, Equatable {
        case pass
        case miss
        case notAvailable = "n/a"
    }

    /// A short stable identifier (e.g. `qd1-p50-vs-nvmf`).
    public var id: String
    /// What is compared, for the goals table.
    public var title: String
    public var requirement: Requirement
    /// vireo's figure (median over rounds), nil when missing.
    public var measured: RoundStats?
    /// The peer's figure, nil for `.zero` goals or when missing.
    public var reference: RoundStats?
    /// Unit of `measured` (and `reference`), e.g. "µs", "IOPS".
    public var unit: String
    /// The unit the reference is shown in when it differs (msg/s vs IOPS).
    public var referenceUnit: String?
    /// What the reference is, e.g. "NVMe-oF p50 (fio clat)".
    public var referenceLabel: String
    /// Which figures were used, and how (sizes, columns, conversions).
    public var note: String?
    /// For a miss: where the time goes (CPU per I/O, fabric floor, ...).
    public var diagnosis: String?

    public init(id: String, title: String, requirement: Requirement, measured: RoundStats?,
                reference: RoundStats?, unit: String, referenceUnit: String? = nil, referenceLabel: String,
                note: String? = nil, diagnosis: String? = nil) {
        self.id = id
        self.title = title
        self.requirement = requirement
        self.measured = measured
        self.reference = reference
        self.unit = unit
        self.referenceUnit = referenceUnit
        self.referenceLabel = referenceLabel
        self.note = note
        self.diagnosis = diagnosis
    }

    /// measured / reference (medians), nil for `.zero` goals or when either
    /// figure is missing or the reference is 0.
    public var ratio: Double? {
        switch requirement {
        case .zero, .atMost: return nil
        default: break
        }
        guard let m = measured?.median, let r = reference?.median, r > 0, m.isFinite else { return nil }
        return m / r
    }

    public var status: Status {
        switch requirement {
        case .zero:
            guard let measured else { return .notAvailable }
            return measured.maximum == 0 && measured.minimum == 0 ? .pass : .miss
        case .ratioAtMost(let target):
            guard let ratio else { return .notAvailable }
            return ratio <= target ? .pass : .miss
        case .ratioAtLeast(let target):
            guard let ratio else { return .notAvailable }
            return ratio >= target ? .pass : .miss
        case .excessAtMost(let limit):
            guard let excess else { return .notAvailable }
            return excess <= limit ? .pass : .miss
        case .atMost(let limit):
            guard let m = measured?.median, m.isFinite else { return .notAvailable }
            return m <= limit ? .pass : .miss
        }
    }

    /// measured − reference (medians), for `.excessAtMost` goals.
    public var excess: Double? {
        guard let m = measured?.median, let r = reference?.median, m.isFinite, r.isFinite else { return nil }
        return m - r
    }

    /// How much of the goal is reached: 1 = exactly on target, 0.5 = half
    /// way (ratio half the required minimum, or twice the allowed maximum).
    /// nil for `.zero` goals and missing figures.
    public var attainment: Double? {
        if case .atMost(let limit) = requirement {
            guard let m = measured?.median, m.isFinite else { return nil }
            return m <= 0 ? .infinity : limit / m
        }
        guard let ratio else { return nil }
        switch requirement {
        case .zero, .atMost: return nil
        case .ratioAtLeast(let target): return target > 0 ? ratio / target : nil
        case .ratioAtMost(let target): return ratio > 0 ? target / ratio : .infinity
        case .excessAtMost(let limit):
            guard let excess else { return nil }
            return excess <= 0 ? .infinity : limit / excess
        }
    }

    /// An obvious collapse rather than noise: under 25% of the goal.
    public var isCollapse: Bool {
        guard let attainment else { return false }
        return attainment < 0.25
    }

    /// The target as text, e.g. "<= 0.50", ">= 1.50", "== 0".
    public var targetText: String {
        switch requirement {
        case .zero: "== 0"
        case .ratioAtMost(let t): "<= " + ReportFormat.ratio(t)
        case .ratioAtLeast(let t): ">= " + ReportFormat.ratio(t)
        case .excessAtMost(let t): "+<= \(ReportFormat.number(t)) \(unit)"
        case .atMost(let t): "<= \(ReportFormat.number(t)) \(unit)"
        }
    }

    /// By how much it passes or misses, e.g. "short by 38% (needs 1.61x)".
    public var marginText: String {
        switch requirement {
        case .zero:
            guard let measured else { return "" }
            return measured.maximum == 0 ? "" : "max \(ReportFormat.number(measured.maximum)) \(unit)"
        case .ratioAtLeast:
            guard let a = attainment else { return "" }
            if a >= 1 { return "+\(ReportFormat.percent(a - 1)) over target" }
            return "short by \(ReportFormat.percent(1 - a)) (needs \(ReportFormat.ratio(1 / a))x)"
        case .ratioAtMost:
            guard let a = attainment else { return "" }
            if a >= 1 { return "\(ReportFormat.percent(1 - 1 / a)) under target" }
            return "\(ReportFormat.ratio(1 / a))x over target"
        case .excessAtMost(let limit):
            guard let excess else { return "" }
            return "\(excess >= 0 ? "+" : "")\(ReportFormat.number(excess)) \(unit)" + (excess <= limit ? "" : " (over by \(ReportFormat.number(excess - limit)))")
        case .atMost(let limit):
            guard let m = measured?.median, m.isFinite else { return "" }
            return m <= limit ? "" : "\(ReportFormat.ratio(m / limit))x over budget"
        }
    }
}
