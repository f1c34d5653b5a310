import Foundation

/// Number formatting for the report: a few significant digits, thousands
/// separated, no locale (the report is the same everywhere).
public enum ReportFormat {
    /// "n/a" for a missing figure.
    public static let missing = "n/a"

    /// 3–4 significant digits: 0.0123, 1.23, 12.3, 123, 1,234, 12,345.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? missing : (value > 0 ? "inf" : "-inf") }
        let magnitude = abs(value)
        if magnitude == 0 { return "0" }
        if magnitude >= 1000 { return grouped(value.rounded()) }
        if magnitude >= 100 { return String(format: "%.0f", value) }
        if magnitude >= 10 { return String(format: "%.1f", value) }
        if magnitude >= 1 { return String(format: "%.2f", value) }
        if magnitude >= 0.01 { return String(format: "%.3f", value) }
        return String(format: "%.3g", value)
    }

    /// `number` or "n/a".
    public static func number(_ value: Double?) -> String { value.map { number($0) } ?? missing }

    /// A ratio with two decimals ("0.47").
    public static func ratio(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? missing : "inf" }
        return abs(value) >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
    }

    /// A fraction as a percentage ("38%", "4.2%").
    public static func percent(_ fraction: Double) -> String {
        guard fraction.isFinite else { return missing }
        let p = fraction * 100
        return abs(p) >= 10 ? String(format: "%.0f%%", p) : String(format: "%.1f%%", p)
    }

    /// The spread column: "±4.2% (3/3)" — (max − min) / median and how
    /// many rounds had the figure.
    public static func spread(_ stats: RoundStats?) -> String {
        guard let stats else { return missing }
        let rounds = "\(stats.count)/\(stats.rounds)"
        guard stats.count > 1, let relative = stats.relativeSpread else { return rounds }
        return "\(percent(relative)) (\(rounds))"
    }

    /// The median with the min–max range when rounds differ:
    /// "4,812 (4,700–4,900)".
    public static func withRange(_ stats: RoundStats?) -> String {
        guard let stats else { return missing }
        guard stats.count > 1, stats.minimum != stats.maximum else { return number(stats.median) }
        return "\(number(stats.median)) (\(number(stats.minimum))–\(number(stats.maximum)))"
    }

    /// A size in bytes as the report names it: 64 B, 4 KiB, 128 KiB, 1500 B.
    public static func bytes(_ value: Int) -> String {
        if value >= 1024, value % (1 << 20) == 0 { return "\(value >> 20) MiB" }
        if value >= 1024, value % 1024 == 0 { return "\(value >> 10) KiB" }
        return "\(value) B"
    }

    /// Thousands separated with ",".
    static func grouped(_ value: Double) -> String {
        let digits = String(format: "%.0f", abs(value))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return value < 0 ? "-" + out : out
    }
}
