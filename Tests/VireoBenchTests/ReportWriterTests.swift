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
        #expect(md.contains("| randread-4k-qd32 | 9,500 | 38.9 | 3,000 | 4,200 | 6,000 | 12,000 | 11% (2/3) | 40.0 | 30.0 | 0.200 | 0.500 | 0.050 | 0.020 | 1.94 |"))
        #expect(md.contains("| randread-4k-qd2 | 3,600 |") && md.contains("| 0.050 | 0.020 | n/a |"))
        #expect(md.contains("### kernel NVMe-oF") && md.contains("### local null_blk"))
        #expect(md.contains("| 1500 B | 8,333 | 0.100 | 12.5 | 1.0% |"))
        #expect(md.contains("round-3/fio-local/randread-4k-qd32.json: no JSON object"))
        #expect(md.contains("| mode | short |"))
    }

    /// The RBD comparison: Vireo's rbd export against fio's rbd engine and NVMe-oF on krbd,
    /// ratios per job; "Not measured." without them.
    @Test func rbdSectionComparesTheThreeWays() throws {
        let root = try ReportFixtures.syntheticResults()
        let none = ReportWriter(results: try ReportResultSet.load(from: root), title: "t").markdown()
        #expect(none.contains("## Ceph RBD (one-OSD memstore cluster in the lab)\n\nNot measured."))
        let round = root.appendingPathComponent("round-1")
        try ReportFixtures.write(ReportFixtures.vireoBlk(iops: 900, mbps: 3.7, p50: 30000, p99: 60000),
                                 to: round.appendingPathComponent("vireo-rbd/randread-4k-qd32.json"))
        try ReportFixtures.write(ReportFixtures.fio(rw: "read", iops: 1200, bwBytes: 1200 * 4096, p50Us: 25000, p99Us: 50000),
                                 to: round.appendingPathComponent("fio-rbd/randread-4k-qd32.json"))
        try ReportFixtures.write(ReportFixtures.fio(rw: "read", iops: 1000, bwBytes: 1000 * 4096, p50Us: 28000, p99Us: 55000),
                                 to: round.appendingPathComponent("fio-krbd-nvmf/randread-4k-qd32.json"))
        let md = ReportWriter(results: try ReportResultSet.load(from: root), title: "t").markdown()
        let section = md.components(separatedBy: "## Ceph RBD")[1].components(separatedBy: "\n## ")[0]
        #expect(section.contains("| randread-4k-qd32 | 900 | 1,200 | 1,000 | 0.75 | 0.90 |"))
        #expect(!section.contains("randread-4k-qd1"), "jobs no RBD system ran are left out")
        #expect(md.contains("### vireo, rbd export") && md.contains("### fio rbd engine") && md.contains("### kernel NVMe-oF on krbd"))
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
        #expect(lines.count == 2 + 18)
        #expect(lines[0].contains("3 rounds, short mode; goals: 10 pass, 8 miss, 0 n/a"))
        #expect(lines.filter { $0.contains("COLLAPSE?") }.map { String($0.prefix(24)) } == ["net-64-fps-vs-ib_send_bw"])
        let qd1 = try #require(lines.first { $0.hasPrefix("qd1-p50-vs-nvmf") })
        #expect(qd1.contains("280 µs") && qd1.contains("590 µs") && qd1.contains("0.47") && qd1.contains("pass"))
    }
}
