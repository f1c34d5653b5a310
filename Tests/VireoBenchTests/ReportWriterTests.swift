import Foundation
import Testing
@testable import VireoBench

/// The written report: markdown tables, the three plots (well-formed SVG
/// with the expected series), and the CI summary.
@Suite struct ReportWriterTests {
    @Test func writesReportAndPlots() throws {
        let results = try ReportResultSet.load(from: try ReportFixtures.syntheticResults())
        let out = try ReportFixtures.temporaryDirectory().appendingPathComponent("report")
        let writer = ReportWriter(results: results, title: "Test | report")
        let path = try writer.write(to: out)
        #expect(path.lastPathComponent == "report.md")
        let md = try String(contentsOf: path, encoding: .utf8)

        #expect(md.hasPrefix("# Test \\| report\n"))
        #expect(md.contains("2026-11-21T17:00Z · kernel 6.1.0-test · commit `abc1234` · 2 vCPUs · 3 rounds measured"))
        #expect(md.contains("deploy/bench/run"))
        #expect(md.contains("| 4K randread QD1 p50 latency vs kernel NVMe-oF [1] | 280 µs | NVMe-oF p50 590 µs | 0.47 | ≤ 0.50 | ✅ pass |"))
        #expect(md.contains("| 4K randwrite QD32 IOPS vs kernel NVMe-oF | 3,000 IOPS | NVMe-oF 4,000 IOPS | 0.75 | ≥ 1.50 | ❌ miss | short by 50% (needs 2.00x) |"))
        #expect(md.contains("❌ **miss (COLLAPSE?)**"))
        #expect(md.contains("### Where the time goes (missed goals)"))
        for plot in ReportWriter.plotFiles {
            #expect(md.contains("](\(plot))"), "\(plot) linked")
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(plot).path), "\(plot) written")
        }
        // Tables: perftest, the three systems, net; missing figures n/a.
        #expect(md.contains("| ib_send_bw | 4 KiB | 24.6 | 0.197 | 6,000 | 33% (3/3) |"))
        #expect(md.contains("| ib_read_lat | 4 KiB | 45.0 |"))
        #expect(md.contains("| randread-4k-qd32 | 9,500 | 38.9 | 3,000 | 4,200 | 6,000 | 12,000 | 11% (2/3) | 40.0 | 30.0 | 1.94 |"))
        #expect(md.contains("| randread-4k-qd2 | 3,600 |") && md.contains("| 40.0 | 30.0 | n/a |"))
        #expect(md.contains("### kernel NVMe-oF") && md.contains("### local null_blk"))
        #expect(md.contains("| 1500 B | 8,333 | 0.100 | 12.5 | 1.0% |"))
        #expect(md.contains("round-3/fio-local/randread-4k-qd32.json: no JSON object"))
        #expect(md.contains("| mode | short |"))
    }

    @Test func fullModeListsFailedMeasurementsAsNotAvailable() throws {
        let root = try ReportFixtures.temporaryDirectory()
        try ReportFixtures.write("mode=full\nrounds=3\n", to: root.appendingPathComponent("meta.txt"))
        try ReportFixtures.write(ReportFixtures.perftestLatency(bytes: 2, typical: 12, p99: 20, p999: 40),
                                 to: root.appendingPathComponent("round-1/perftest/ib_send_lat-2.txt"))
        try ReportFixtures.write(try ReportFixtures.text("perftest/failed-correlation-ib_send_lat-4096.txt"),
                                 to: root.appendingPathComponent("round-1/perftest/ib_send_lat-4096.txt"))
        try ReportFixtures.write(ReportFixtures.vireoBlk(iops: 100, mbps: 0.4, p50: 900, p99: 2000),
                                 to: root.appendingPathComponent("round-2/vireo-blk/randread-4k-qd1.json"))
        try ReportFixtures.write(ReportFixtures.vireoNet(frameBytes: 64, fps: 10),
                                 to: root.appendingPathComponent("round-3/vireo-net/64.json"))
        let md = ReportWriter(results: try ReportResultSet.load(from: root)).markdown()
        #expect(md.contains("3 rounds measured · full mode"))
        #expect(md.contains("| ib_send_lat | 4 KiB | n/a | n/a | n/a | n/a | n/a | n/a |"))
        #expect(md.contains("| ib_write_bw | 64 B | n/a | n/a | n/a | n/a |"))
        #expect(md.contains("| randread-4k-qd8 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"))
        #expect(md.contains("| randread-4k-qd1 | 100 | 0.400 | 900 |") && md.contains("| 1/3 |"))
        #expect(md.contains("| 9000 B | n/a | n/a | n/a | n/a | n/a |"))
        #expect(md.contains("round-1/perftest/ib_send_lat-4096.txt: perftest CPU clock calibration failed"))
        #expect(md.contains("### kernel NVMe-oF\n\nNot measured."))
    }

    @Test func plotsAreWellFormedWithExpectedSeries() throws {
        let results = try ReportResultSet.load(from: try ReportFixtures.syntheticResults())
        let plots = Dictionary(uniqueKeysWithValues: ReportWriter(results: results).plots())
        #expect(Set(plots.keys) == Set(ReportWriter.plotFiles))

        let latencyPlot = try #require(plots["latency-percentiles.svg"])
        let latency = try #require(SVGInspector.parse(latencyPlot.render()))
        #expect(latency.rootElement == "svg")
        #expect(latency.series == ["vireo", "kernel NVMe-oF", "local null_blk", "perftest ib_read_lat 4 KiB (RTT)"])
        #expect(["p50", "p90", "p99", "p99.9"].allSatisfy(latency.texts.contains))
        #expect(latency.texts.contains("latency (µs) (log scale)"))

        let iopsPlot = try #require(plots["iops-vs-qd.svg"])
        let iops = try #require(SVGInspector.parse(iopsPlot.render()))
        #expect(iops.series == ["vireo", "kernel NVMe-oF", "local null_blk"])
        #expect(["1", "2", "4", "8", "16", "32"].allSatisfy(iops.texts.contains))

        let throughputPlot = try #require(plots["throughput-vs-size.svg"])
        let throughput = try #require(SVGInspector.parse(throughputPlot.render()))
        // ib_write_bw and local blk have no points here: not drawn.
        #expect(throughput.series == ["perftest ib_read_bw", "perftest ib_send_bw", "vireo net",
                                      "vireo (blk)", "kernel NVMe-oF (blk)"])
        #expect(["64", "1500", "4K", "9000", "128K"].allSatisfy(throughput.texts.contains))
        #expect(throughput.texts.contains("perftest ib_read_bw"))  // legend
    }

    @Test func summaryOneLinePerGoal() throws {
        let results = try ReportResultSet.load(from: try ReportFixtures.syntheticResults())
        let summary = ReportWriter(results: results).summary()
        let lines = summary.split(separator: "\n")
        #expect(lines.count == 2 + 10)
        #expect(lines[0].contains("3 rounds, short mode; goals: 4 pass, 6 miss, 0 n/a"))
        #expect(lines.filter { $0.contains("COLLAPSE?") }.map { String($0.prefix(24)) } == ["net-64-fps-vs-ib_send_bw"])
        let qd1 = try #require(lines.first { $0.hasPrefix("qd1-p50-vs-nvmf") })
        #expect(qd1.contains("280 µs") && qd1.contains("590 µs") && qd1.contains("0.47") && qd1.contains("pass"))
    }
}

/// The SVG writer on its own: ticks, escaping, empty and hostile input.
@Suite struct ReportSVGTests {
    typealias Mapping = SVGPlot.AxisMapping

    @Test func logTicks() {
        let (decades, minor) = Mapping.logTicks(low: 1, high: 1000)
        #expect(decades.map(\.value) == [1, 10, 100, 1000] && decades.map(\.label) == ["1", "10", "100", "1k"])
        #expect(minor.count == 24)
        let (narrow, _) = Mapping.logTicks(low: 1, high: 50)
        #expect(narrow.map(\.label) == ["1", "2", "5", "10", "20", "50"])
        let (tiny, _) = Mapping.logTicks(low: 3, high: 4)
        #expect(tiny.map(\.value) == [3, 4])
        #expect(Mapping.logTicks(low: 0, high: 10).0.isEmpty)
    }

    @Test func linearTicksAndLabels() {
        #expect(Mapping.niceStep(0.7) == 1 && Mapping.niceStep(13) == 20 && Mapping.niceStep(4.9) == 5)
        #expect(Mapping.niceStep(0) == 1 && Mapping.niceStep(.nan) == 1)
        #expect(Mapping.label(20000) == "20k" && Mapping.label(1500) == "1.5k" && Mapping.label(0.5) == "0.5")
        #expect(Mapping.label(2e6) == "2M" && Mapping.label(0) == "0")
        let axis = Mapping(axis: SVGPlot.Axis(label: "IOPS", scale: .auto(ratio: 20)), values: [1200, 4800])
        #expect(!axis.isLog && axis.low == 0 && axis.high == 5000 && axis.ticks.map(\.label).last == "5k")
        let wide = Mapping(axis: SVGPlot.Axis(label: "IOPS", scale: .auto(ratio: 20)), values: [10, 50000])
        #expect(wide.isLog && wide.fraction(10) > 0 && wide.fraction(50000) < 1)
    }

    @Test func escapingKeepsDocumentsWellFormed() throws {
        let hostile = "a<b>&\"c\"'\u{1}</text><script>"
        let plot = SVGPlot(title: hostile, subtitle: hostile,
                           xAxis: SVGPlot.Axis(label: hostile, scale: .log), yAxis: SVGPlot.Axis(label: "y", scale: .linear),
                           series: [SVGPlot.Series(name: hostile, color: "#000000", marker: .cross,
                                                   points: [SVGPlot.Point(x: 1, y: 1, label: hostile),
                                                            SVGPlot.Point(x: 10, y: 2)])])
        let svg = plot.render()
        #expect(!svg.contains("<script>"))
        let inspector = try #require(SVGInspector.parse(svg))
        #expect(inspector.series == ["a<b>&\"c\"'</text><script>"])
        #expect(SVGPlot.escape("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;")
    }

    @Test func emptyAndDegenerateData() throws {
        let empty = SVGPlot(title: "nothing", xAxis: SVGPlot.Axis(label: "x", scale: .log),
                            yAxis: SVGPlot.Axis(label: "y", scale: .log),
                            series: [SVGPlot.Series(name: "none", color: "#000000", marker: .circle, points: [])])
        let inspector = try #require(SVGInspector.parse(empty.render()))
        #expect(inspector.series.isEmpty && inspector.texts.contains("no data measured"))

        // Zero, negative and NaN values cannot sit on a log axis: dropped.
        let points = [0.0, -1, .nan, 5, 50].map { SVGPlot.Point(x: 1 + abs($0.isNaN ? 2 : $0), y: $0) }
        let degenerate = SVGPlot(title: "d", xAxis: SVGPlot.Axis(label: "x", scale: .linear),
                                 yAxis: SVGPlot.Axis(label: "y", scale: .log),
                                 series: [SVGPlot.Series(name: "s", color: "#0072B2", marker: .diamond, points: points)])
        let svg = degenerate.render()
        let parsed = try #require(SVGInspector.parse(svg))
        #expect(parsed.series == ["s"])
        #expect(!svg.contains("nan") && !svg.contains("inf"))
        // Two drawable points: one line, two markers with tooltips (+ the legend's marker).
        #expect(parsed.elementCounts["title"] == 1 + 2)

        // One value only, on every scale.
        for scale in [SVGPlot.Scale.linear, .log, .auto(ratio: 10)] {
            let single = SVGPlot(title: "one", xAxis: SVGPlot.Axis(label: "x", scale: scale),
                                 yAxis: SVGPlot.Axis(label: "y", scale: scale),
                                 series: [SVGPlot.Series(name: "s", color: "#000000", marker: .square,
                                                         points: [SVGPlot.Point(x: 3, y: 3, low: 2, high: 4)])])
            let svg = single.render()
            #expect(SVGInspector.parse(svg) != nil && !svg.contains("nan"), "\(scale)")
        }
    }
}
