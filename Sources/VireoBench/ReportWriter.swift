import Foundation

/// Turns a results directory into the benchmark report: `report.md` with
/// the goals and every figure, three SVG plots next to it, and a compact
/// goals table for CI logs.
public struct ReportWriter: Sendable {
    public var results: ReportResultSet
    public var title: String
    public var goals: [Goal]

    /// The plot files, in the order the report shows them.
    public static let plotFiles = ["latency-percentiles.svg", "iops-vs-qd.svg", "throughput-vs-size.svg"]
    /// The markdown file.
    public static let reportFile = "report.md"

    public init(results: ReportResultSet, title: String = "Vireo benchmark report") {
        self.results = results
        self.title = title
        self.goals = Goal.contractGoals(results)
    }

    /// Writes `report.md` and the plots into `directory` (created if
    /// needed). Returns the report's path.
    @discardableResult
    public func write(to directory: URL) throws(ReportError) -> URL {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        for (name, plot) in plots() {
            try Self.write(plot.render(), to: directory.appendingPathComponent(name))
        }
        let report = directory.appendingPathComponent(Self.reportFile)
        try Self.write(markdown(), to: report)
        return report
    }

    private static func write(_ text: String, to url: URL) throws(ReportError) {
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw .writeFailed(path: url.path, reason: error.localizedDescription)
        }
    }

    /// The goals as a plain-text table, one line per goal, for CI logs. A
    /// goal under 25% of its target is marked `COLLAPSE?`.
    public func summary() -> String {
        let header = ["goal", "vireo", "reference", "ratio", "target", "result", ""]
        var rows: [[String]] = [header]
        for goal in goals {
            var margin = goal.status == .notAvailable ? "" : goal.marginText
            if goal.isCollapse { margin = "COLLAPSE? " + margin }
            rows.append([
                goal.id, Self.figure(goal.measured, goal.unit),
                goal.reference.map { Self.figure($0, goal.referenceUnit ?? goal.unit) } ?? "-",
                goal.ratio.map(ReportFormat.ratio) ?? "-", goal.targetText, goal.status.rawValue, margin,
            ])
        }
        let widths = (0..<header.count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        let rounds = results.rounds.count
        var out = "\(title): \(rounds) round\(rounds == 1 ? "" : "s")"
        if let mode = results.meta("mode") { out += ", \(mode) mode" }
        let passed = goals.filter { $0.status == .pass }.count
        let missed = goals.filter { $0.status == .miss }.count
        out += "; goals: \(passed) pass, \(missed) miss, \(goals.count - passed - missed) n/a\n"
        for row in rows {
            let cells = row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
            }
            var line = cells.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    /// "312 µs" or "n/a".
    static func figure(_ stats: RoundStats?, _ unit: String) -> String {
        guard let stats else { return ReportFormat.missing }
        return "\(ReportFormat.number(stats.median)) \(unit)"
    }
}
