import Foundation
import Testing
@testable import VireoBench

/// The parsers against real outputs captured in the lab (perftest 4.5 on
/// rxe0, fio 3.33 on null_blk and on a host file) and against broken ones.
@Suite struct ReportParserTests {
    // MARK: perftest

    @Test func perftestLatencyFixture() throws {
        let result = try PerftestResult.parse(try ReportFixtures.text("perftest/ib_send_lat-2.txt"))
        let rows = try #require(result.latencyRows)
        #expect(result.bandwidthRows == nil)
        #expect(rows == [PerftestLatencyRow(bytes: 2, iterations: 1000, minimum: 11.61, maximum: 6154.13,
                                            typical: 12.62, average: 80.91, standardDeviation: 490.10,
                                            p99: 3994.46, p999: 6154.13)])
        let read = try #require(try PerftestResult.parse(try ReportFixtures.text("perftest/ib_read_lat-4096.txt"))
            .latencyRows?.first)
        #expect(read.bytes == 4096 && read.typical == 46.44 && read.p99 == 2840.77 && read.p999 == 8328.71)
    }

    @Test func everyLatencyFixtureParses() throws {
        for tool in ["ib_send_lat", "ib_write_lat", "ib_read_lat"] {
            for bytes in [2, 4096] {
                let rows = try #require(try PerftestResult.parse(
                    try ReportFixtures.text("perftest/\(tool)-\(bytes).txt")).latencyRows)
                #expect(rows.count == 1 && rows[0].bytes == bytes && rows[0].iterations == 1000, "\(tool)-\(bytes)")
                #expect(rows[0].minimum <= rows[0].typical && rows[0].typical <= rows[0].maximum)
                #expect(rows[0].p999 != nil)
            }
        }
    }

    @Test func perftestBandwidthFixture() throws {
        let row = try #require(try PerftestResult.parse(try ReportFixtures.text("perftest/ib_write_bw-4096.txt"))
            .bandwidthRows?.first)
        #expect(row.bytes == 4096 && row.iterations == 45900 && row.average == 89.51 && row.messageRateMpps == 0.022913)
        #expect(row.unit == .mebibytesPerSecond)
        // 0.022913 Mpps has more digits than 89.51 MiB/s: MsgRate wins.
        #expect(row.rateSource == .messageRate)
        #expect(abs(try #require(row.messagesPerSecond) - 22913) < 1e-6)
        #expect(abs(try #require(row.megabytesPerSecond) - 0.022913 * 4096) < 1e-9)
        // The two columns agree: perftest's MB/sec is MiB/s.
        #expect(abs(row.average * 1_048_576 / 1e6 / 93.851648 - 1) < 0.001)

        // 128 KiB: MsgRate has 3 digits (0.000511), BW has 4 (63.92).
        let big = try #require(try PerftestResult.parse(try ReportFixtures.text("perftest/ib_read_bw-131072.txt"))
            .bandwidthRows?.first)
        #expect(big.rateSource == .bandwidthAverage)
        #expect(abs(try #require(big.megabytesPerSecond) - 63.92 * 1.048576) < 1e-9)
        #expect(abs(try #require(big.messagesPerSecond) - 63.92 * 1_048_576 / 131072) < 1e-6)
    }

    @Test func everyBandwidthFixtureParses() throws {
        for tool in ["ib_write_bw", "ib_read_bw", "ib_send_bw"] {
            for bytes in [64, 4096, 131072] {
                let row = try #require(try PerftestResult.parse(
                    try ReportFixtures.text("perftest/\(tool)-\(bytes).txt")).bandwidthRows?.first)
                #expect(row.bytes == bytes, "\(tool)-\(bytes)")
                let fromRate = try #require(row.messageRateMpps) * 1e6 * Double(bytes)
                let fromBW = row.average * 1_048_576
                // Both columns describe the same rate, to their rounding.
                #expect(abs(fromRate - fromBW) / fromBW < 0.02, "\(tool)-\(bytes): \(fromRate) vs \(fromBW)")
            }
        }
    }

    @Test func perftestFailures() {
        #expect(throws: PerftestParseError.noHeader) { try PerftestResult.parse("") }
        #expect(throws: PerftestParseError.noHeader) {
            try PerftestResult.parse("Couldn't connect to 10.99.0.1:18515\nUnable to init the socket connection\n")
        }
        #expect(throws: PerftestParseError.clockCalibrationFailed) {
            try PerftestResult.parse(" Conflicting CPU frequency values detected\n Correlation coefficient is 0.2\n")
        }
        #expect(throws: PerftestParseError.noDataRow) {
            try PerftestResult.parse(" #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]\n----\n")
        }
        #expect(throws: PerftestParseError.truncatedRow) {
            try PerftestResult.parse(" #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]\n 2  1000  11.6\n")
        }
        #expect(throws: PerftestParseError.truncatedRow) {
            try PerftestResult.parse(" #bytes  #iterations  BW peak[MB/sec]  BW average[MB/sec]  MsgRate[Mpps]\n 64 100 0.00\n")
        }
        #expect(throws: PerftestParseError.unknownHeader(" #bytes #whatever")) {
            try PerftestResult.parse(" #bytes #whatever\n 2 3 4 5 6\n")
        }
    }

    @Test func perftestCalibrationFailureWithInfinities() throws {
        // Real: the calibration failed, perftest printed inf/-nan and still
        // exited 0. That is no measurement.
        let text = try ReportFixtures.text("perftest/failed-correlation-ib_send_lat-4096.txt")
        #expect(text.contains(" inf "))
        #expect(throws: PerftestParseError.clockCalibrationFailed) { try PerftestResult.parse(text) }
        #expect(throws: PerftestParseError.nonFiniteValues) {
            try PerftestResult.parse(" #bytes #iterations t_min t_max t_typical\n 2 10 inf 1 -nan\n")
        }
    }

    @Test func perftestOlderLayoutAndGbits() throws {
        // perftest before t_avg/percentiles: 5 columns.
        let old = try #require(try PerftestResult.parse(
            " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]\n 2       1000          1.1   9.9   1.5\n---\n")
            .latencyRows?.first)
        #expect(old.typical == 1.5 && old.average == nil && old.p99 == nil)
        // --report_gbits, no MsgRate column.
        let gbits = try #require(try PerftestResult.parse(
            " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]\n 65536  1000  0.00  8.00\n")
            .bandwidthRows?.first)
        #expect(gbits.unit == .gigabitsPerSecond && gbits.rateSource == .bandwidthAverage)
        #expect(gbits.megabytesPerSecond == 1000)
        #expect(gbits.messagesPerSecond == 1e9 / 65536)
    }

    @Test func perftestPrefixesNeverCrash() throws {
        // Every truncation of a real output either parses or fails typed.
        for name in ["ib_send_lat-2", "ib_write_bw-131072"] {
            let text = try ReportFixtures.text("perftest/\(name).txt")
            var parsed = 0
            for length in stride(from: 0, through: text.count, by: 7) {
                do throws(PerftestParseError) {
                    _ = try PerftestResult.parse(String(text.prefix(length)))
                    parsed += 1
                } catch {
                    // A typed error is the expected outcome for most prefixes.
                }
            }
            #expect(parsed > 0, "\(name): some late prefixes hold the whole row")
        }
        // Hostile bytes: numbers out of range, NaN, huge ints.
        for text in [" #bytes #iterations t_min t_max t_typical\n 99999999999999999999 1 2 3 4\n",
                     " #bytes #iterations t_min t_max t_typical\n 2 1 nan inf 4\n",
                     " #bytes #iterations t_min t_max t_typical\n -2 1 2 3 4\n",
                     String(repeating: "#bytes t_min\n", count: 1000)] {
            #expect(throws: PerftestParseError.self) { try PerftestResult.parse(text) }
        }
    }

    // MARK: fio

    @Test func fioReadFixture() throws {
        let fio = try FioResult.parse(try ReportFixtures.data("fio/lab-nullb0-io_uring-randread-4k-qd1.json"))
        #expect(fio.fioVersion == "fio-3.33")
        #expect(fio.write == nil)
        let read = try #require(fio.primary)
        #expect(read == fio.read)
        #expect(read.iops == 15193.075899 && read.bytesPerSecond == 62232202 && read.ios == 45640)
        #expect(read.latencyKind == .completion)
        #expect(read.latency(50) == 1.928 && read.latency(90) == 3.632)
        #expect(read.latency(99) == 10.56 && read.latency(99.9) == 317.44)
        #expect(abs(try #require(read.cpuPercent) - (23.043623 + 76.889777)) < 1e-9)
        let sample = try #require(ReportJobSample(fio))
        #expect(sample.iops == 15193.075899 && sample.latencySource == "fio clat")
        #expect(abs(try #require(sample.megabytesPerSecond) - 62.232202) < 1e-9)
    }

    @Test func fioWriteFixtureAndPreamble() throws {
        let write = try #require(try FioResult.parse(
            try ReportFixtures.data("fio/host-file-io_uring-randwrite-4k-qd32.json")).primary)
        #expect(write.iops == 49392.303848 && write.latency(50) == 387.072 && write.latency(99.9) == 8978.432)
        // Real output that starts with a fio "note:" line before the JSON.
        let text = try ReportFixtures.text("fio/host-file-psync-seqread-128k.json")
        #expect(text.hasPrefix("note:"))
        let read = try #require(try FioResult.parse(Data(text.utf8)).read)
        #expect(read.iops == 10856.143856 && read.bytesPerSecond == 1422936487 && read.latency(50) == 16.064)
        for name in ["host-file-io_uring-randread-4k-qd1", "lab-nullb0-io_uring-randread-4k-qd32",
                     "lab-nullb0-io_uring-seqread-128k-qd8"] {
            let summary = try #require(try FioResult.parse(try ReportFixtures.data("fio/\(name).json")).primary)
            #expect(summary.iops > 0 && summary.latencyUs.count == 4, "\(name)")
        }
    }

    @Test func fioKernelNVMeoFFixtures() throws {
        // Real lab outputs of the kernel NVMe-oF peer (deploy/bench/lab-bench).
        let read = try #require(try FioResult.parse(
            try ReportFixtures.data("fio/lab-nvmf-rdma-io_uring-randread-4k-qd1.json")).primary)
        #expect(read.iops == 732.422526 && read.bytesPerSecond == 3000002 && read.ios == 2198)
        #expect(read.latency(50) == 201.728 && read.latency(99.9) == 68681.728)
        let write = try FioResult.parse(try ReportFixtures.data("fio/lab-nvmf-rdma-io_uring-randwrite-4k-qd32.json"))
        #expect(write.read == nil)
        let summary = try #require(write.primary)
        #expect(summary.iops == 1209.441489 && summary.latency(50) == 10158.08)
    }

    @Test func fioTotalLatencyPreferred() throws {
        let json = """
            {"jobs":[{"jobname":"j","error":0,"read":{"iops":10,"bw_bytes":40960,"total_ios":100,
              "clat_ns":{"percentile":{"50.000000":1000}},"lat_ns":{"percentile":{"50.000000":2000,"99.9":5000}}}}]}
            """
        let read = try #require(try FioResult.parse(Data(json.utf8)).read)
        #expect(read.latencyKind == .total && read.latency(50) == 2 && read.latency(99.9) == 5)
    }

    @Test func fioFailures() throws {
        #expect(throws: FioParseError.notJSON) { try FioResult.parse(Data()) }
        #expect(throws: FioParseError.notJSON) { try FioResult.parse(Data("fio: engine io_uring not loadable\n".utf8)) }
        #expect(throws: FioParseError.noJobs) { try FioResult.parse(Data(#"{"jobs": []}"#.utf8)) }
        #expect(throws: FioParseError.noJobs) { try FioResult.parse(Data(#"{"fio version": "x"}"#.utf8)) }
        #expect(throws: FioParseError.jobFailed(name: "randread-4k-qd1", error: 5)) {
            try FioResult.parse(Data(#"{"jobs": [{"jobname": "randread-4k-qd1", "error": 5}]}"#.utf8))
        }
        #expect(throws: FioParseError.self) {
            try FioResult.parse(Data(#"{"jobs": [{"read": {"iops": "fast"}}]}"#.utf8))
        }
        // A job that did nothing has no summary (and no sample).
        let idle = try FioResult.parse(Data(#"{"jobs": [{"read": {"iops": 0}, "write": {"iops": 0}}]}"#.utf8))
        #expect(idle.primary == nil && ReportJobSample(idle) == nil)
        // Every truncation of a real file fails typed or parses; never traps.
        let data = try ReportFixtures.data("fio/lab-nullb0-io_uring-randread-4k-qd1.json")
        for length in stride(from: 0, to: data.count, by: 97) {
            #expect(throws: FioParseError.self) { try FioResult.parse(data.prefix(length)) }
        }
    }

    // MARK: vireo-bench blk / net JSON

    @Test func blkRecordContractExample() throws {
        let json = """
            {"tool":"vireo-bench blk","label":"x","rw":"randread","bs":4096,"qd":1,"queues":1,
             "seconds":10.0,"ios":12345,"bytes":50565120,"errors":0,"iops":1234.5,"mbps":5.05,
             "lat_us":{"min":1,"mean":2,"p50":3,"p90":4,"p99":5,"p999":6,"max":7},
             "cpu_s":{"initiator":1.2,"target":0.9},"cpu_us_per_io":{"initiator":97.2,"target":72.9},
             "initiator":{"payload_bytes_copied":0,"allocations":0,"allocations_per_io":0.0},"future_key":[1,2]}
            """
        let record = try ReportBlkRecord.parse(Data(json.utf8))
        #expect(record.iops == 1234.5 && record.megabytesPerSecond == 5.05 && record.qd == 1 && record.bs == 4096)
        #expect(record.latUs?.p999 == 6 && record.latUs?.value(atPercentile: 99.9) == 6)
        #expect(record.cpuUsPerIO?["target"] == 72.9)
        #expect(record.initiator?.payloadBytesCopied == 0 && record.initiator?.allocationsPerIO == 0)
        let sample = ReportJobSample(record)
        #expect(sample.latencyUs == [50: 3, 90: 4, 99: 5, 99.9: 6] && sample.cpuUsPerIO["initiator"] == 97.2)
    }

    @Test func blkRecordOptionalKeys() throws {
        // No cpu, no initiator, no mbps: still usable; MB/s derived.
        let record = try ReportBlkRecord.parse(Data(#"{"iops": 10, "bytes": 4000000, "seconds": 2}"#.utf8))
        #expect(record.cpuUsPerIO == nil && record.initiator == nil && record.latUs == nil)
        #expect(record.megabytesPerSecond == 2)
        #expect(ReportJobSample(record).latencyUs.isEmpty)
        #expect(throws: ReportJSONError.empty) { try ReportBlkRecord.parse(Data(" \n".utf8)) }
        #expect(throws: ReportJSONError.self) { try ReportBlkRecord.parse(Data(#"{"iops": "many"}"#.utf8)) }
        #expect(throws: ReportJSONError.self) { try ReportBlkRecord.parse(Data(#"{"iops": 1, "lat_us": {"p50"#.utf8)) }
        #expect(throws: ReportJSONError.self) { try ReportBlkRecord.parse(Data("[1, 2]".utf8)) }
    }

    @Test func nullFiguresAreMissingNotFatal() throws {
        // What the load generators write for a run with 0 I/Os: non-finite
        // figures as null, also inside the per-process maps.
        let blk = try ReportBlkRecord.parse(Data("""
            {"iops":0,"mbps":0,"lat_us":{"p50":null,"p99":null},"cpu_s":{"initiator":0.5,"target":null},
             "cpu_us_per_io":{"initiator":null,"target":null},
             "initiator":{"payload_bytes_copied":0,"allocations":3,"allocations_per_io":null}}
            """.utf8))
        #expect(blk.cpuS == ["initiator": 0.5] && blk.cpuUsPerIO == [:])
        #expect(blk.latUs?.p50 == nil && blk.initiator?.allocationsPerIO == nil && blk.initiator?.allocations == 3)
        #expect(ReportJobSample(blk).latencyUs.isEmpty)
        let net = try ReportNetRecord.parse(Data(#"{"fps":null,"gbps":null,"cpu_us_per_frame":{"target":null,"initiator-a":2}}"#.utf8))
        #expect(net.framesPerSecond == nil && net.cpuUsPerFrame == ["initiator-a": 2])
    }

    @Test func netRecord() throws {
        let json = #"{"tool":"vireo-bench net","frame_bytes":1500,"seconds":10,"tx_frames":1000,"rx_frames":990,"#
            + #""rx_bytes":1485000,"fps":99,"gbps":0.001188,"mbps":0.1485,"loss":0.01,"cpu_s":{"target":1},"#
            + #""cpu_us_per_frame":{"target":101}}"#
        let record = try ReportNetRecord.parse(Data(json.utf8))
        #expect(record.frameBytes == 1500 && record.framesPerSecond == 99 && record.loss == 0.01)
        #expect(record.gigabitsPerSecond == 0.001188 && record.cpuUsPerFrame?["target"] == 101)
        // Derived figures when only the raw counts are there.
        let raw = try ReportNetRecord.parse(Data(#"{"seconds": 2, "rx_frames": 100, "rx_bytes": 2000000}"#.utf8))
        #expect(raw.framesPerSecond == 50 && raw.megabytesPerSecond == 1 && raw.gigabitsPerSecond == 0.008)
        #expect(throws: ReportJSONError.self) { try ReportNetRecord.parse(Data(#"{"fps": null, "loss": "x"}"#.utf8)) }
        #expect(throws: ReportJSONError.self) { try ReportNetRecord.parse(Data(#"{"cpu_s": {"a": "b"}}"#.utf8)) }
    }
}
