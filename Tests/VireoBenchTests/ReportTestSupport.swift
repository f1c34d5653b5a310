import Foundation
import Testing
@testable import VireoBench

/// Shared helpers for the report tests: fixture access and a synthetic
/// results directory in the contract's layout.
enum ReportFixtures {
    /// `Tests/VireoBenchTests/Fixtures` (copied into the test bundle).
    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    static func data(_ path: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(path))
    }

    static func text(_ path: String) throws -> String {
        String(decoding: try data(path), as: UTF8.self)
    }

    /// A fresh empty temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vireo-report-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// perftest latency output in perftest 4.5's layout.
    static func perftestLatency(bytes: Int, typical: Double, p99: Double = 0, p999: Double = 0) -> String {
        """
        ---------------------------------------------------------------------------------------
                            Send Latency Test
         Dual-port       : OFF\t\tDevice         : rxe0
        ---------------------------------------------------------------------------------------
         #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] 
         \(bytes)       1000          \(typical * 0.9)          \(p999)      \(typical)    \t       \(typical * 1.1)       \t1.00 \t\t\(p99) \t\t\(p999)
        ---------------------------------------------------------------------------------------

        """
    }

    /// perftest bandwidth output in perftest 4.5's layout.
    static func perftestBandwidth(bytes: Int, averageMiBps: Double, mpps: Double) -> String {
        """
        ---------------------------------------------------------------------------------------
                            Send BW Test
        ---------------------------------------------------------------------------------------
         #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]
         \(bytes)       11900            0.00               \(String(format: "%.2f", averageMiBps))  \t\t   \(String(format: "%.6f", mpps))
        ---------------------------------------------------------------------------------------

        """
    }

    /// A minimal fio JSON with one job doing `rw` (read or write).
    static func fio(rw: String, iops: Double, bwBytes: Double, p50Us: Double, p99Us: Double) -> String {
        let direction = """
            {"io_bytes": \(Int(bwBytes * 10)), "bw_bytes": \(Int(bwBytes)), "iops": \(iops), "total_ios": \(Int(iops * 10)),
             "clat_ns": {"min": 1000, "max": 9000000, "mean": \(p50Us * 1000),
                         "percentile": {"50.000000": \(Int(p50Us * 1000)), "90.000000": \(Int(p50Us * 1300)),
                                        "99.000000": \(Int(p99Us * 1000)), "99.900000": \(Int(p99Us * 2000))}},
             "lat_ns": {"min": 1100, "max": 9100000, "mean": \(p50Us * 1000)}}
            """
        let idle = #"{"io_bytes": 0, "bw_bytes": 0, "iops": 0.0, "total_ios": 0, "clat_ns": {"min": 0, "max": 0, "mean": 0.0}}"#
        return """
            {"fio version": "fio-3.33", "jobs": [{"jobname": "job", "error": 0,
              "read": \(rw == "read" ? direction : idle), "write": \(rw == "write" ? direction : idle),
              "usr_cpu": 5.0, "sys_cpu": 30.0}]}
            """
    }

    /// A `vireo-bench blk --json` object.
    static func vireoBlk(iops: Double, mbps: Double, p50: Double, p99: Double, cpuInitiator: Double = 40,
                         cpuTarget: Double = 30, copied: Double = 0, allocationsPerIO: Double = 0) -> String {
        """
        {"tool":"vireo-bench blk","label":"t","rw":"randread","bs":4096,"qd":1,"queues":1,"seconds":10.0,
         "ios":\(Int(iops * 10)),"bytes":\(Int(mbps * 1e7)),"errors":0,"iops":\(iops),"mbps":\(mbps),
         "lat_us":{"min":\(p50 / 2),"mean":\(p50 * 1.1),"p50":\(p50),"p90":\(p50 * 1.4),"p99":\(p99),"p999":\(p99 * 2),"max":\(p99 * 3)},
         "cpu_s":{"initiator":1.2,"target":0.9},"cpu_us_per_io":{"initiator":\(cpuInitiator),"target":\(cpuTarget)},
         "initiator":{"payload_bytes_copied":\(copied),"allocations":\(allocationsPerIO * iops * 10),"allocations_per_io":\(allocationsPerIO)},
         "target":{"payload_bytes_copied":0},
         "costs_per_io":{"initiator":{"send_posts":0.1,"sleeps":0.05,"syscalls":0.2,"wakeups":0.05},
                         "target":{"send_posts":0.4,"sleeps":0.02,"syscalls":0.5,"wakeups":0.02}}}
        """
    }

    /// A `vireo-bench net --json` object.
    static func vireoNet(frameBytes: Int, fps: Double, loss: Double = 0) -> String {
        let bytesPerSecond = fps * Double(frameBytes)
        return """
            {"tool":"vireo-bench net","frame_bytes":\(frameBytes),"seconds":10.0,"tx_frames":\(Int(fps * 10)),
             "rx_frames":\(Int(fps * 10)),"rx_bytes":\(Int(bytesPerSecond * 10)),"fps":\(fps),
             "gbps":\(bytesPerSecond * 8 / 1e9),"mbps":\(bytesPerSecond / 1e6),"loss":\(loss),
             "cpu_s":{"target":1.0},"cpu_us_per_frame":{"initiator-a":12.5,"initiator-b":11.0,"target":20.0},
             "target":{"drops":\(frameBytes == 64 ? 3 : 0),"payload_bytes_copied":0}}
            """
    }

    /// The synthetic results directory the report tests share: 3 rounds
    /// with per-round values chosen so medians are easy to check, and
    /// round 2 missing `vireo-blk/randread-4k-qd32.json` and
    /// `fio-nvmf/randread-4k-qd32.json`; round 3 with a garbage fio file.
    static func syntheticResults() throws -> URL {
        let root = try temporaryDirectory()
        try write("date=2026-11-21T17:00Z\nkernel=6.1.0-test\ncommit=abc1234\ncpus=2\nrounds=3\nmode=short\n",
                  to: root.appendingPathComponent("meta.txt"))
        let qd1P50 = [250.0, 300, 280]          // vireo p50 → median 280
        let nvmfP50 = [600.0, 590, 580]         // NVMe-oF p50 → median 590
        let qd32 = [9000.0, nil, 10000]         // vireo randread QD32, round 2 missing → 9500
        let nvmfQD32 = [4800.0, nil, 5000]      // NVMe-oF randread QD32 → 4900
        let sendMpps = [0.005, 0.006, 0.007]    // ib_send_bw 4 KiB → 6000 msg/s
        for (i, n) in [1, 2, 3].enumerated() {
            let round = root.appendingPathComponent("round-\(n)")
            let perftest = round.appendingPathComponent("perftest")
            try write(perftestLatency(bytes: 2, typical: 12 + Double(i), p99: 20, p999: 40),
                      to: perftest.appendingPathComponent("ib_send_lat-2.txt"))
            try write(perftestLatency(bytes: 4096, typical: 45, p99: 90, p999: 400),
                      to: perftest.appendingPathComponent("ib_read_lat-4096.txt"))
            try write(perftestBandwidth(bytes: 4096, averageMiBps: sendMpps[i] * 4096 / 1.048576, mpps: sendMpps[i]),
                      to: perftest.appendingPathComponent("ib_send_bw-4096.txt"))
            try write(perftestBandwidth(bytes: 64, averageMiBps: 0.98, mpps: 0.016),
                      to: perftest.appendingPathComponent("ib_send_bw-64.txt"))
            // 60 MiB/s, MsgRate 0.000458: the BW column has more digits.
            try write(perftestBandwidth(bytes: 131072, averageMiBps: 60, mpps: 0.000458),
                      to: perftest.appendingPathComponent("ib_read_bw-131072.txt"))

            let nvmf = round.appendingPathComponent("fio-nvmf")
            try write(fio(rw: "read", iops: 1700, bwBytes: 1700 * 4096, p50Us: nvmfP50[i], p99Us: 900),
                      to: nvmf.appendingPathComponent("randread-4k-qd1.json"))
            if let iops = nvmfQD32[i] {
                try write(fio(rw: "read", iops: iops, bwBytes: iops * 4096, p50Us: 6000, p99Us: 9000),
                          to: nvmf.appendingPathComponent("randread-4k-qd32.json"))
                // Whole-VM CPU: 1.2 busy seconds in a 1 s window (lab-bench's sidecar).
                try write("1.2000 1.0000\n", to: nvmf.appendingPathComponent("randread-4k-qd32.vm"))
            }
            try write(fio(rw: "write", iops: 4000, bwBytes: 4000 * 4096, p50Us: 8000, p99Us: 12000),
                      to: nvmf.appendingPathComponent("randwrite-4k-qd32.json"))
            let local = round.appendingPathComponent("fio-local")
            try write(fio(rw: "read", iops: 15000, bwBytes: 15000 * 4096, p50Us: 2, p99Us: 10),
                      to: local.appendingPathComponent("randread-4k-qd1.json"))
            if n == 3 {
                try write("fio: pid=1234, err=5/file:io_u.c:1845, func=io_u error, error=Input/output error\n",
                          to: local.appendingPathComponent("randread-4k-qd32.json"))
            }

            let vireo = round.appendingPathComponent("vireo-blk")
            try write(vireoBlk(iops: 3000, mbps: 12.3, p50: qd1P50[i], p99: 700, cpuInitiator: 60, cpuTarget: 50),
                      to: vireo.appendingPathComponent("randread-4k-qd1.json"))
            if let iops = qd32[i] {
                try write(vireoBlk(iops: iops, mbps: iops * 4096 / 1e6, p50: 3000, p99: 6000),
                          to: vireo.appendingPathComponent("randread-4k-qd32.json"))
                try write("1.5000 1.0000\n", to: vireo.appendingPathComponent("randread-4k-qd32.vm"))
            }
            try write(vireoBlk(iops: 3000, mbps: 12.3, p50: 9000, p99: 20000, cpuInitiator: 150, cpuTarget: 120,
                               allocationsPerIO: n == 3 ? 0.5 : 0),
                      to: vireo.appendingPathComponent("randwrite-4k-qd32.json"))
            try write(vireoBlk(iops: 380, mbps: 50, p50: 20000, p99: 40000),
                      to: vireo.appendingPathComponent("seqread-128k-qd8.json"))
            for qd in [2, 4, 8, 16] {
                try write(vireoBlk(iops: 3000 + Double(qd) * 300, mbps: 1, p50: 1000, p99: 2000),
                          to: vireo.appendingPathComponent("randread-4k-qd\(qd).json"))
            }

            let net = round.appendingPathComponent("vireo-net")
            // 1500 B: 0.1 Gbit/s; 64 B: 500 fps.
            try write(vireoNet(frameBytes: 1500, fps: 0.1e9 / 8 / 1500, loss: 0.01),
                      to: net.appendingPathComponent("1500.json"))
            try write(vireoNet(frameBytes: 64, fps: 500), to: net.appendingPathComponent("64.json"))
            try write(vireoNet(frameBytes: 9000, fps: 1000), to: net.appendingPathComponent("9000.json"))
        }
        return root
    }
}
