extension ReportWriter {
    /// A system's look, the same in every plot.
    static func style(_ system: ReportSystem) -> (color: String, marker: SVGPlot.Marker) {
        switch system {
        case .vireo: ("#0072B2", .circle)
        case .vireoWholeMemory: ("#56B4E9", .diamond)
        case .nvmf: ("#D55E00", .square)
        case .local: ("#009E73", .triangle)
        case .vireoRBD: ("#CC79A7", .circle)
        case .rbdFio: ("#E69F00", .triangle)
        case .rbdNvmf: ("#000000", .square)
        }
    }

    /// The three plots, by file name.
    public func plots() -> [(String, SVGPlot)] {
        [("latency-percentiles.svg", latencyPlot()), ("iops-vs-qd.svg", iopsPlot()),
         ("throughput-vs-size.svg", throughputPlot())]
    }

    /// A point at the median with min–max whiskers.
    static func point(_ x: Double, _ stats: RoundStats?, label: String) -> SVGPlot.Point? {
        guard let stats else { return nil }
        return SVGPlot.Point(x: x, y: stats.median, low: stats.minimum, high: stats.maximum,
                             label: "\(label): \(ReportFormat.number(stats.median)) (\(stats.count)/\(stats.rounds) rounds)")
    }

    /// 4K QD1 randread latency percentiles per system, with perftest's
    /// RDMA READ 4 KiB round trip as the fabric's floor.
    func latencyPlot() -> SVGPlot {
        let percentiles: [(Double, String)] = [(50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p99.9")]
        // x = 1 / (1 − p): p50 → 2, p90 → 10, p99 → 100, p99.9 → 1000.
        func x(_ p: Double) -> Double { 1 / (1 - p / 100) }
        var series: [SVGPlot.Series] = []
        for system in ReportSystem.allCases {
            let points = percentiles.compactMap { p, name in
                Self.point(x(p), results.block(system, "randread-4k-qd1") { $0.latencyUs[p] },
                           label: "\(system.displayName) \(name)")
            }
            let (color, marker) = Self.style(system)
            series.append(SVGPlot.Series(name: system.displayName, color: color, marker: marker, points: points))
        }
        let perftest: [(Double, String, (PerftestLatencyRow) -> Double?)] = [
            (50, "t_typical", { $0.typical }), (99, "99%", { $0.p99 }), (99.9, "99.9%", { $0.p999 }),
        ]
        let floor = perftest.compactMap { p, name, figure in
            Self.point(x(p), results.perftestLatency("ib_read_lat", bytes: 4096, figure), label: "ib_read_lat 4 KiB \(name)")
        }
        series.append(SVGPlot.Series(name: "perftest ib_read_lat 4 KiB (RTT)", color: "#000000", marker: .diamond,
                                     dashed: true, points: floor))
        return SVGPlot(
            title: "4K random read latency at QD1",
            subtitle: "median over rounds, whiskers min–max; lower is better",
            xAxis: SVGPlot.Axis(label: "percentile", scale: .log,
                                ticks: percentiles.map { SVGPlot.Tick(x($0.0), $0.1) }, annotatesScale: false),
            yAxis: SVGPlot.Axis(label: "latency (µs)", scale: .log), series: series)
    }

    /// 4K randread IOPS against queue depth per system.
    func iopsPlot() -> SVGPlot {
        let depths = ReportResultSet.queueDepths
        var series: [SVGPlot.Series] = []
        for system in ReportSystem.allCases {
            let points = depths.compactMap { qd in
                Self.point(Double(qd), results.block(system, "randread-4k-qd\(qd)") { $0.iops },
                           label: "\(system.displayName) QD\(qd) IOPS")
            }
            let (color, marker) = Self.style(system)
            series.append(SVGPlot.Series(name: system.displayName, color: color, marker: marker, points: points))
        }
        return SVGPlot(
            title: "4K random read IOPS vs queue depth",
            subtitle: "median over rounds, whiskers min–max; higher is better",
            xAxis: SVGPlot.Axis(label: "queue depth", scale: .log,
                                ticks: depths.map { SVGPlot.Tick(Double($0), String($0)) }),
            yAxis: SVGPlot.Axis(label: "IOPS", scale: .auto(ratio: 20)), series: series)
    }

    /// Throughput (MB/s) against message / frame / block size: perftest's
    /// RDMA bandwidths, vireo-net and the block jobs at 4K and 128K.
    func throughputPlot() -> SVGPlot {
        var series: [SVGPlot.Series] = []
        let perftest: [(String, String, SVGPlot.Marker)] = [
            ("ib_write_bw", "#000000", .diamond), ("ib_read_bw", "#7F7F7F", .invertedTriangle),
            ("ib_send_bw", "#CC79A7", .square),
        ]
        for (tool, color, marker) in perftest {
            let points = [64, 4096, 131072].compactMap { size in
                Self.point(Double(size), results.perftestBandwidth(tool, bytes: size) { $0.megabytesPerSecond },
                           label: "\(tool) \(ReportFormat.bytes(size)) MB/s")
            }
            series.append(SVGPlot.Series(name: "perftest \(tool)", color: color, marker: marker, dashed: true,
                                         points: points))
        }
        let netPoints = results.netFrameSizes.compactMap { size in
            Self.point(Double(size), results.net(size) { $0.megabytesPerSecond }, label: "vireo-net \(size) B MB/s")
        }
        series.append(SVGPlot.Series(name: "vireo net", color: "#56B4E9", marker: .cross,
                                     points: netPoints))
        let blockJobs: [(Int, String)] = [(4096, "randread-4k-qd32"), (131072, "seqread-128k-qd8")]
        for system in ReportSystem.allCases {
            let points = blockJobs.compactMap { size, job in
                Self.point(Double(size), results.block(system, job) { $0.megabytesPerSecond },
                           label: "\(system.displayName) \(job) MB/s")
            }
            let (color, marker) = Self.style(system)
            series.append(SVGPlot.Series(name: "\(system.displayName) (blk)", color: color, marker: marker,
                                         points: points))
        }
        let ticks: [SVGPlot.Tick] = [
            .init(64, "64"), .init(1500, "1500"), .init(4096, "4K"), .init(9000, "9000"), .init(131072, "128K"),
        ]
        return SVGPlot(
            title: "Throughput vs size",
            subtitle: "perftest: message size · net: frame size · blk: 4K randread QD32, 128K seqread QD8",
            xAxis: SVGPlot.Axis(label: "size (bytes)", scale: .log, ticks: ticks),
            yAxis: SVGPlot.Axis(label: "MB/s (10^6 bytes/s)", scale: .log), series: series)
    }
}
