import ArgumentParser
import Foundation
import VireoBench

/// `vireo-bench report`: the benchmark report from a results directory.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write report.md and SVG plots from a benchmark results directory.",
        discussion: """
            Reads <results>/meta.txt and <results>/round-N/{perftest,fio-nvmf,fio-local,vireo-blk,vireo-net}/ \
            (see the benchmark contract), takes medians over rounds, evaluates the goals and writes \
            report.md, latency-percentiles.svg, iops-vs-qd.svg and throughput-vs-size.svg into --out. \
            Exits non-zero only when the results are unusable, never because a goal is missed.
            """)

    @Option(help: "The results directory (meta.txt, round-N/...).")
    var results: String

    @Option(help: "Where to write report.md and the plots (created if needed).")
    var out: String

    @Option(help: "The report's title.")
    var title: String = "Vireo benchmark report"

    @Flag(help: "Print the goals table (one line per goal) to stdout, for CI logs.")
    var summary = false

    func run() throws {
        let resultsURL = URL(fileURLWithPath: results)
        let outURL = URL(fileURLWithPath: out)
        // A ReportError ends the command with its description and status 1;
        // missed goals never do.
        let set = try ReportResultSet.load(from: resultsURL)
        let writer = ReportWriter(results: set, title: title)
        let report = try writer.write(to: outURL)
        if summary { print(writer.summary(), terminator: "") }
        FileHandle.standardError.write(Data("vireo-bench report: wrote \(report.path)\n".utf8))
    }
}
