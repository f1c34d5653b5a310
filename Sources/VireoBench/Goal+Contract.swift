import Foundation

/// The goals of issue #6 (see the benchmark contract), evaluated on one
/// results directory. Ratios are taken between medians over rounds.
extension Goal {
    /// Every contract goal, in the report's order. Goals whose figures are
    /// missing are kept (status n/a), except the optional 128K write goal,
    /// which only appears when a `seqwrite-128k-qd8` job was measured.
    public static func contractGoals(_ results: ReportResultSet) -> [Goal] {
        var goals: [Goal] = []
        let cpus = results.meta("cpus")

        // 4K QD1 randread p50 vs kernel NVMe-oF.
        let qd1 = "randread-4k-qd1"
        let vireoP50 = results.block(.vireo, qd1) { $0.latencyUs[50] }
        let nvmfP50 = results.block(.nvmf, qd1) { $0.latencyUs[50] }
        var qd1Goal = Goal(
            id: "qd1-p50-vs-nvmf", title: "4K randread QD1 p50 latency vs kernel NVMe-oF",
            requirement: .ratioAtMost(0.5), measured: vireoP50, reference: nvmfP50, unit: "µs",
            referenceLabel: "NVMe-oF p50",
            note: latencySourceNote(results, job: qd1))
        if qd1Goal.status == .miss, let p50 = vireoP50?.median {
            qd1Goal.diagnosis = latencyDiagnosis(results, p50: p50)
        }
        goals.append(qd1Goal)

        // 4K QD32 IOPS vs NVMe-oF and vs perftest's 4 KiB message rate.
        let (messageRate, messageRateNote) = perftestMessageRate(results, tool: "ib_send_bw", bytes: 4096)
        for (job, name) in [("randread-4k-qd32", "randread"), ("randwrite-4k-qd32", "randwrite")] {
            let iops = results.block(.vireo, job) { $0.iops }
            var vsNvmf = Goal(
                id: "\(name)-qd32-iops-vs-nvmf", title: "4K \(name) QD32 IOPS vs kernel NVMe-oF",
                requirement: .ratioAtLeast(1.5), measured: iops, reference: results.block(.nvmf, job) { $0.iops },
                unit: "IOPS", referenceLabel: "NVMe-oF")
            var vsPerftest = Goal(
                id: "\(name)-qd32-iops-vs-perftest", title: "4K \(name) QD32 IOPS vs perftest 4 KiB message rate",
                requirement: .ratioAtLeast(0.7), measured: iops, reference: messageRate, unit: "IOPS",
                referenceUnit: "msg/s", referenceLabel: "ib_send_bw 4 KiB", note: messageRateNote)
            if vsNvmf.status == .miss || vsPerftest.status == .miss {
                let diagnosis = cpuDiagnosis(results, job: job, rate: iops?.median, cpus: cpus)
                if vsNvmf.status == .miss { vsNvmf.diagnosis = diagnosis }
                if vsPerftest.status == .miss { vsPerftest.diagnosis = diagnosis }
            }
            goals.append(vsNvmf)
            goals.append(vsPerftest)
        }

        // 128K sequential throughput vs RDMA READ (reads) / WRITE (writes).
        for (job, tool, name) in [("seqread-128k-qd8", "ib_read_bw", "seqread"),
                                  ("seqwrite-128k-qd8", "ib_write_bw", "seqwrite")] {
            let mbps = results.block(.vireo, job) { $0.megabytesPerSecond }
            if name == "seqwrite" && mbps == nil { continue }
            let reference = results.perftestBandwidth(tool, bytes: 131072) { $0.megabytesPerSecond }
            var goal = Goal(
                id: "\(name)-128k-vs-\(tool)", title: "128K \(name) QD8 MB/s vs \(tool) 128 KiB",
                requirement: .ratioAtLeast(0.9), measured: mbps, reference: reference, unit: "MB/s",
                referenceLabel: "\(tool) 128 KiB",
                note: "perftest MB/s = 10^6 bytes/s (its MB/sec column is MiB/s; converted)")
            if goal.status == .miss {
                let iops = results.block(.vireo, job) { $0.iops }
                goal.diagnosis = cpuDiagnosis(results, job: job, rate: iops?.median, cpus: cpus)
            }
            goals.append(goal)
        }

        // virtio-net 1500 B throughput vs ib_send_bw at the nearest size.
        let sendSizes = [64, 1500, 4096, 9000, 131072].filter { size in
            results.perftestBandwidth("ib_send_bw", bytes: size) { $0.bytesPerSecond } != nil
        }
        let nearest = sendSizes.min { abs(log2(Double($0) / 1500)) < abs(log2(Double($1) / 1500)) } ?? 4096
        let netGbps = results.net(1500) { $0.gigabitsPerSecond }
        var netGoal = Goal(
            id: "net-1500-gbps-vs-ib_send_bw", title: "virtio-net 1500 B Gbit/s vs ib_send_bw \(ReportFormat.bytes(nearest))",
            requirement: .ratioAtLeast(0.8), measured: netGbps,
            reference: results.perftestBandwidth("ib_send_bw", bytes: nearest) { $0.bytesPerSecond.map { $0 * 8 / 1e9 } },
            unit: "Gbit/s", referenceLabel: "ib_send_bw \(ReportFormat.bytes(nearest))",
            note: "ib_send_bw at \(ReportFormat.bytes(nearest)), the measured size nearest 1500 B (log scale)")
        if netGoal.status == .miss {
            netGoal.diagnosis = netDiagnosis(results, frameBytes: 1500, cpus: cpus)
        }
        goals.append(netGoal)

        // virtio-net 64 B frame rate vs ib_send_bw 64 B message rate.
        let (rate64, rate64Note) = perftestMessageRate(results, tool: "ib_send_bw", bytes: 64)
        var fpsGoal = Goal(
            id: "net-64-fps-vs-ib_send_bw", title: "virtio-net 64 B frames/s vs ib_send_bw 64 B message rate",
            requirement: .ratioAtLeast(0.6), measured: results.net(64) { $0.framesPerSecond }, reference: rate64,
            unit: "fps", referenceUnit: "msg/s", referenceLabel: "ib_send_bw 64 B", note: rate64Note)
        if fpsGoal.status == .miss {
            fpsGoal.diagnosis = netDiagnosis(results, frameBytes: 64, cpus: cpus)
        }
        goals.append(fpsGoal)

        // What per-command memory windows cost (issue #12): vs the same initiator with whole-memory keys.
        let whole = "whole-memory"
        if results.block(.vireoWholeMemory, "randread-4k-qd32", { $0.iops }) != nil
            || results.block(.vireoWholeMemory, qd1, { $0.latencyUs[50] }) != nil {
            goals.append(Goal(
                id: "windows-qd32-iops-vs-\(whole)", title: "4K randread QD32 IOPS, memory windows vs whole-memory keys",
                requirement: .ratioAtLeast(0.9), measured: results.block(.vireo, "randread-4k-qd32") { $0.iops },
                reference: results.block(.vireoWholeMemory, "randread-4k-qd32") { $0.iops }, unit: "IOPS",
                referenceLabel: "whole-memory", note: "the same initiator and target, remote_access = whole-memory"))
            goals.append(Goal(
                id: "windows-qd1-p50-added", title: "4K randread QD1 p50 added by memory windows",
                requirement: .excessAtMost(10), measured: vireoP50,
                reference: results.block(.vireoWholeMemory, qd1) { $0.latencyUs[50] }, unit: "µs",
                referenceLabel: "whole-memory p50", note: "measured − whole-memory, medians"))
        }

        // Whole-VM CPU per I/O (every process and the kernel) against kernel NVMe-oF's, same job.
        goals.append(Goal(
            id: "vm-cpu-per-io-qd32-vs-nvmf", title: "Whole-VM CPU per I/O, 4K randread QD32, vs kernel NVMe-oF",
            requirement: .ratioAtMost(1.0), measured: results.block(.vireo, "randread-4k-qd32") { $0.vmCPUUsPerIO },
            reference: results.block(.nvmf, "randread-4k-qd32") { $0.vmCPUUsPerIO }, unit: "µs",
            referenceLabel: "NVMe-oF",
            note: "/proc/stat busy time (user, nice, system, irq, softirq, steal) inside each job's window, over its IOPS"))

        // The system-call and wake-up budget at QD32 (#13), each daemon, from its stats file.
        for role in ["initiator", "target"] {
            goals.append(Goal(
                id: "syscalls-per-io-qd32-\(role)", title: "System calls per I/O, 4K randread QD32, \(role)",
                requirement: .atMost(0.25), measured: results.block(.vireo, "randread-4k-qd32") { $0.syscallsPerIO[role] },
                reference: nil, unit: "per I/O", referenceLabel: "",
                note: "posts, CQ arms, channel reads, eventfd reads and writes, io_uring enters and sleeps (vireo_datapath_*), per I/O"))
            goals.append(Goal(
                id: "wakeups-per-io-qd32-\(role)", title: "Thread wake-ups per I/O, 4K randread QD32, \(role)",
                requirement: .atMost(0.1), measured: results.block(.vireo, "randread-4k-qd32") { $0.wakeupsPerIO[role] },
                reference: nil, unit: "per I/O", referenceLabel: "",
                note: "sleeps of the data-path threads (vireo_datapath_sleeps_total), per I/O"))
        }

        // The switch forwards without loss and without copies (target stats over each net job).
        goals.append(Goal(
            id: "net-switch-drops", title: "virtio-net frames dropped by the target's switch",
            requirement: .zero, measured: results.stats { round in round.net.values.compactMap { $0.target?.drops }.max() },
            reference: nil, unit: "frames", referenceLabel: "",
            note: "largest vireo_target_network_drops_total delta (any reason) of any vireo-net job in a round"))
        goals.append(Goal(
            id: "net-switch-bytes-copied", title: "virtio-net frame bytes copied by the target's CPU",
            requirement: .zero, measured: results.stats { round in
                round.net.values.compactMap { $0.target?.payloadBytesCopied }.max()
            }, reference: nil, unit: "B", referenceLabel: "",
            note: "largest vireo_target_network_payload_bytes_copied_total delta of any vireo-net job in a round"))

        // Zero copies by either daemon's CPU, zero allocations per request (initiator).
        let copiers: [(role: String, id: String, counters: KeyPath<ReportBlkRecord, ReportBlkRecord.Initiator?>)] = [
            ("initiator", "payload-bytes-copied", \.initiator), ("target", "target-payload-bytes-copied", \.target),
        ]
        for c in copiers {
            goals.append(Goal(
                id: c.id, title: "Payload bytes copied by the \(c.role)'s CPU",
                requirement: .zero, measured: results.stats { round in
                    round.vireoBlk.values.compactMap { $0[keyPath: c.counters]?.payloadBytesCopied }.max()
                }, reference: nil, unit: "B", referenceLabel: "",
                note: "largest \(c.role) payload_bytes_copied of any vireo-blk job in a round"))
        }
        goals.append(Goal(
            id: "allocations-per-io", title: "Allocations per I/O in the initiator's steady state",
            requirement: .zero, measured: results.stats { round in
                round.vireoBlk.values.compactMap { $0.initiator?.allocationsPerIO }.max()
            }, reference: nil, unit: "per I/O", referenceLabel: "",
            note: "largest initiator allocations_per_io of any vireo-blk job in a round (malloc counter preloaded)"))
        return goals
    }

    /// The 4 KiB (or 64 B) perftest message rate, and which column it came
    /// from.
    static func perftestMessageRate(_ results: ReportResultSet, tool: String,
                                    bytes: Int) -> (RoundStats?, String) {
        let stats = results.perftestBandwidth(tool, bytes: bytes) { $0.messagesPerSecond }
        let sources = Set(results.rounds.compactMap {
            ReportResultSet.bandwidthRow($0, tool: tool, bytes: bytes)?.rateSource
        })
        let how: String
        switch (sources.contains(.messageRate), sources.contains(.bandwidthAverage)) {
        case (true, false): how = "its MsgRate column"
        case (false, true): how = "BW average (MiB/s) × 2^20 / \(bytes)"
        case (true, true): how = "MsgRate, or BW average / \(bytes) where that has more digits"
        case (false, false): how = "not measured"
        }
        return (stats, "\(tool) \(ReportFormat.bytes(bytes)) message rate from \(how)")
    }

    /// Which latency figures the QD1 goal compares.
    static func latencySourceNote(_ results: ReportResultSet, job: String) -> String {
        let sources = Set(results.rounds.compactMap { $0.block[.nvmf]?[job]?.latencySource }).sorted()
        guard !sources.isEmpty else { return "vireo-bench request latency vs fio" }
        return "vireo-bench request latency vs \(sources.joined(separator: "/")) percentiles"
    }

    /// Where the QD1 time goes: the fabric's own round trip and the CPU each
    /// side spends per I/O.
    static func latencyDiagnosis(_ results: ReportResultSet, p50: Double) -> String {
        var parts: [String] = []
        if let read = results.perftestLatency("ib_read_lat", bytes: 4096, { $0.typical })?.median {
            parts.append("RDMA READ 4 KiB round trip (ib_read_lat typical) \(ReportFormat.number(read)) µs = "
                         + "\(ReportFormat.percent(read / p50)) of vireo's p50")
        }
        if let send = results.perftestLatency("ib_send_lat", bytes: 2, { $0.typical })?.median {
            parts.append("2 B SEND one way \(ReportFormat.number(send)) µs")
        }
        for role in ["initiator", "target"] {
            if let cpu = results.block(.vireo, "randread-4k-qd1", { $0.cpuUsPerIO[role] })?.median {
                parts.append("\(role) CPU \(ReportFormat.number(cpu)) µs per I/O")
            }
        }
        return parts.isEmpty ? "no fabric or CPU figures measured" : parts.joined(separator: "; ")
    }

    /// Where the throughput time goes: CPU per I/O of each process and how
    /// busy that makes it at the measured rate.
    static func cpuDiagnosis(_ results: ReportResultSet, job: String, rate: Double?, cpus: String?) -> String {
        var parts: [String] = []
        for role in ["initiator", "target"] {
            guard let cpu = results.block(.vireo, job, { $0.cpuUsPerIO[role] })?.median else { continue }
            var text = "\(role) CPU \(ReportFormat.number(cpu)) µs per I/O"
            if let rate { text += " (\(ReportFormat.percent(cpu * rate / 1e6)) of one CPU)" }
            parts.append(text)
        }
        if parts.isEmpty { return "no CPU figures measured (run vireo-bench blk with --pid)" }
        if let cpus { parts.append("\(cpus) vCPUs shared by load generator, initiator and target") }
        return parts.joined(separator: "; ")
    }

    /// Where the virtio-net time goes: CPU per frame of each process.
    static func netDiagnosis(_ results: ReportResultSet, frameBytes: Int, cpus: String?) -> String {
        var parts: [String] = []
        let fps = results.net(frameBytes) { $0.framesPerSecond }?.median
        let roles = Set(results.rounds.flatMap { $0.net[frameBytes]?.cpuUsPerFrame?.keys.map { $0 } ?? [] }).sorted()
        for role in roles {
            guard let cpu = results.net(frameBytes, { $0.cpuUsPerFrame?[role] })?.median else { continue }
            var text = "\(role) CPU \(ReportFormat.number(cpu)) µs per frame"
            if let fps { text += " (\(ReportFormat.percent(cpu * fps / 1e6)) of one CPU)" }
            parts.append(text)
        }
        if let loss = results.net(frameBytes, { $0.loss })?.median, loss > 0 {
            parts.append("loss \(ReportFormat.percent(loss))")
        }
        if parts.isEmpty { return "no CPU figures measured (run vireo-bench net with --pid)" }
        if let cpus { parts.append("\(cpus) vCPUs") }
        return parts.joined(separator: "; ")
    }
}
